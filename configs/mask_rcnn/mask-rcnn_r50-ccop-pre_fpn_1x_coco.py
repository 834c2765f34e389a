# Mask R-CNN R50-FPN 1x on COCO with mmdet's plain protocol, from a CCOP
# backbone: stage 1 frozen, BN frozen (norm_eval), BN-free FPN and 2fc head
# trained from scratch, single-scale 1333x800. Only the backbone is
# transferred (mmdet's FPN has no BN, so CCOP's FPN does not fit):
#   python tools/convert_ccop_to_mmdet.py CKPT ccop_r50_mmdet.pth --no-fpn
#   --cfg-options model.backbone.init_cfg.checkpoint=ccop_r50_mmdet.pth
# Numbers differ from the self-supervised protocol
# (mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco.py), typically by 1 AP
# or more: compare methods under one protocol only (docs/transfer.md).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']

# registers the plugin and its safe checkpoint loading (the allowlist that
# lets --resume load mmengine checkpoints with weights_only=True)
custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

pretrained_ckpt = 'work_dirs/ccop_r50_fpn/ccop_r50_mmdet.pth'

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint=pretrained_ckpt)))
# stop at the first NaN / inf loss with one line (stage, iteration) instead
# of training on and evaluating an empty result
default_hooks = dict(non_finite_loss=dict(type='NonFiniteLossHook'))
