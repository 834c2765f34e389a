# Mask R-CNN R50-FPN on Cityscapes (mmdet's schedule: 8 x 8 repeated epochs,
# lr 0.01 for 8 images, ~24k iterations as CCOP's Detectron2 benchmark),
# fine-tuned from CCOP: SyncBN in backbone, FPN and heads, 4conv1fc box head,
# no frozen stage, pre-trained backbone + FPN. mmdet's base initialises from
# a COCO-trained detector (load_from); here that is switched off so that the
# pre-training alone is measured.
_base_ = [
    'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py',
    '../_base_/models/mask-rcnn_ccop-pre_fpn-syncbn-4conv1fc.py',
]

model = _base_.ssl_protocol_model

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

optim_wrapper = _base_.ssl_protocol_optim_wrapper
default_hooks = _base_.ssl_protocol_default_hooks
load_from = None
