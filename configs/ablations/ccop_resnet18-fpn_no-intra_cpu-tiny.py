# Ablation (tools/compare_pretraining.py method `ccop_no_intra`): CCOP
# without the intra-image object discrimination loss (no intra head: the loss
# is neither computed nor logged).
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(intra_head=None)
