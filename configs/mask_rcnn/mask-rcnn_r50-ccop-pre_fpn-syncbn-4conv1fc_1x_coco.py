# Mask R-CNN R50-FPN 1x on COCO, fine-tuned from CCOP with the protocol of the
# self-supervised detection papers (Detectron2 setting of SoCo / DetCo /
# CCOP's benchmark): SyncBN in backbone, FPN and heads, 4conv1fc box head,
# no frozen stage, BN statistics trained, the pre-trained FPN transferred,
# multi-scale training (short side 640-800), no weight decay on norm layers,
# 1000-iteration warm-up. See docs/transfer.md.
#
# Weights: convert the pre-training checkpoint first (keeps backbone + FPN):
#   python tools/convert_ccop_to_mmdet.py work_dirs/ccop_r50/epoch_800.pth \
#       work_dirs/ccop_r50/ccop_r50_fpn_mmdet.pth
# and pass it with
#   --cfg-options model.init_cfg.checkpoint=work_dirs/.../ccop_r50_fpn_mmdet.pth
# The model-level ``Pretrained`` init loads every matching key (backbone.* and
# neck.*) after the heads' own init; ``backbone.init_cfg`` would load the
# backbone only. ``load_from=<ckpt>`` also loads backbone + FPN (but is meant
# for full detector checkpoints and is logged as a resume source).
#
# Single-process (non-distributed) runs: mmengine's Runner turns SyncBN into
# BN when not distributed, so the config runs as is on one GPU or CPU.
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/models/mask-rcnn_ccop-pre_fpn-syncbn-4conv1fc.py',
]

model = _base_.ssl_protocol_model

# Detectron2's MIN_SIZE_TRAIN (640, ..., 800), sampling "choice"
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736),
                (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

optim_wrapper = _base_.ssl_protocol_optim_wrapper
default_hooks = _base_.ssl_protocol_default_hooks
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=12,
        by_epoch=True,
        milestones=[8, 11],
        gamma=0.1)
]
