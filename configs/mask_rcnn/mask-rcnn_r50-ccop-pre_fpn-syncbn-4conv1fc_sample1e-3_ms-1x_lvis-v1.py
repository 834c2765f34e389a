# Mask R-CNN R50-FPN on LVIS v1 (mmdet's repeat-factor sampling 1e-3,
# multi-scale, 1x), fine-tuned from CCOP with the self-supervised protocol:
# SyncBN in backbone, FPN and heads, 4conv1fc box head, no frozen stage,
# pre-trained backbone + FPN (see the COCO config of the same name).
_base_ = ['mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py']

# ccop_plugin's fixes for the pinned stack (utils/compat.py): without them
# torch >= 2.6 refuses mmengine's own checkpoints in `mim test` / --resume
custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

pretrained_ckpt = 'work_dirs/ccop_r50_fpn/ccop_r50_fpn_mmdet.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=pretrained_ckpt),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))
