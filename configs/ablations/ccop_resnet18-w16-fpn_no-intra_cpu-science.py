# Ablation (`make science` method `ccop_no_intra_science`): CCOP
# without the intra-image object discrimination loss (no intra head: the loss
# is neither computed nor logged).
_base_ = ['../ccop/ccop_resnet18-w16-fpn_cpu-science.py']

model = dict(intra_head=None)
