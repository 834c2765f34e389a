# Ablation (`make science` method `ccop_intra_key_science`): the
# intra-image loss anchored at the key, as in the released CCOP code
# (`x - x.diag()[None, :]`), instead of at the query (the paper's form and
# this plugin's default; see IntraObjectDiscriminationHead).
_base_ = ['../ccop/ccop_resnet18-w16-fpn_cpu-science.py']

model = dict(intra_head=dict(anchor='key'))
