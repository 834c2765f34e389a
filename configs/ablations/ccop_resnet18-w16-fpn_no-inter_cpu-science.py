# Ablation (`make science` method `ccop_no_inter_science`): CCOP
# without the inter-image object contrastive loss (no RoI head: the RoI loss
# against the object queue is neither computed nor logged, and the object
# queue is not filled). The RoI projection neck still learns from the
# intra-image loss.
_base_ = ['../ccop/ccop_resnet18-w16-fpn_cpu-science.py']

model = dict(roi_head=None)
