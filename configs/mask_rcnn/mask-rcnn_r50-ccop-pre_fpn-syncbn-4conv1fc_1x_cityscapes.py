# Mask R-CNN R50-FPN on Cityscapes (mmdet's schedule: 8 x 8 repeated epochs,
# lr 0.01 for 8 images, ~24k iterations as CCOP's Detectron2 benchmark),
# fine-tuned from CCOP: SyncBN in backbone, FPN and heads, 4conv1fc box head,
# no frozen stage, pre-trained backbone + FPN. mmdet's base initialises from
# a COCO-trained detector (load_from); here that is switched off so that the
# pre-training alone is measured.
_base_ = ['mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py']

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

# Detectron2: MIN_SIZE_TRAIN 800-1024 ("choice"), MAX_SIZE 2048
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(2048, 800), (2048, 832), (2048, 864), (2048, 896),
                (2048, 928), (2048, 960), (2048, 992), (2048, 1024)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))

optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))
load_from = None
