# Ablation (tools/compare_pretraining.py method `ccop_no_inter`): CCOP
# without the inter-image object contrastive loss (the RoI loss against the
# object queue, weight 0; still computed and logged, it gives no gradient, so
# the RoI projection neck stays at its initialisation). Single-process only:
# under DDP the unused RoI neck would need find_unused_parameters.
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(roi_loss_weight=0.)
