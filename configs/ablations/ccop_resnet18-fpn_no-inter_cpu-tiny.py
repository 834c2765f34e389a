# Ablation (tools/compare_pretraining.py method `ccop_no_inter`): CCOP
# without the inter-image object contrastive loss (no RoI head: the RoI loss
# against the object queue is neither computed nor logged, and the object
# queue is not filled). The RoI projection neck still learns from the
# intra-image loss.
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(roi_head=None)
