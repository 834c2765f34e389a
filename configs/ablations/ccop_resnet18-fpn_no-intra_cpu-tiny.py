# Ablation (tools/compare_pretraining.py method `ccop_no_intra`): CCOP
# without the intra-image object discrimination loss (weight 0; the loss is
# still computed and logged, it gives no gradient).
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(intra_loss_weight=0.)
