# Ablation (tools/compare_pretraining.py method `ccop_intra_key`): the
# intra-image loss anchored at the key, as in the released CCOP code
# (`x - x.diag()[None, :]`), instead of at the query (the paper's form and
# this plugin's default; see IntraObjectDiscriminationHead).
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(intra_head=dict(anchor='key'))
