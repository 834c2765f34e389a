# Mask R-CNN ResNet-18-FPN on the embedded synthetic dataset
# (tools/generate_dataset.py --out data/synth), CPU-friendly, minutes.
# Matches the tiny CCOP pre-training (configs/ccop/ccop_resnet18-fpn_cpu-tiny.py:
# ResNet-18, FPN 128 channels with BN) so that backbone AND FPN transfer:
#   python tools/convert_ccop_to_mmdet.py work_dirs/ccop_tiny/iter_20.pth \
#       work_dirs/ccop_tiny/ccop_tiny_mmdet.pth
#   python tools/train.py <this config> --cfg-options \
#       model.init_cfg.type=Pretrained \
#       model.init_cfg.checkpoint=work_dirs/ccop_tiny/ccop_tiny_mmdet.pth
# Protocol as the papers' (BN in backbone, FPN and heads, 4conv1fc box head,
# nothing frozen, BN statistics trained); plain BN instead of SyncBN since
# this runs in one process. Evaluation: COCO bbox + segm AP on the val split.
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']

# converted CCOP checkpoint, or None for a randomly initialised backbone
pretrained_ckpt = None
classes = ('circle', 'rectangle', 'triangle', 'star', 'ring', 'cross')
img_scale = (160, 160)
fpn_channels = 128
# RoI heads are most of the CPU time: 64-channel head convs and 64 sampled
# RoIs per image halve the iteration time (~0.6 s for 4 images on 2 cores)
head_channels = 64
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    init_cfg=(dict(type='Pretrained', checkpoint=pretrained_ckpt)
              if pretrained_ckpt else None),
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        in_channels=[64, 128, 256, 512],
        out_channels=fpn_channels,
        norm_cfg=norm_cfg),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=fpn_channels,
            conv_out_channels=head_channels,
            fc_out_channels=256,
            norm_cfg=norm_cfg,
            num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(
            in_channels=fpn_channels,
            conv_out_channels=head_channels,
            norm_cfg=norm_cfg,
            num_classes=len(classes))),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=30)))

# ---------------------------------------------------------------- data
dataset_type = 'CocoDataset'
data_root = 'data/synth/'
metainfo = dict(
    classes=classes,
    palette=[(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230),
             (106, 0, 228), (0, 60, 100)])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='images/train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='images/val/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric=['bbox', 'segm'],
    format_only=False)
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule
max_epochs = 6
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=50),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[5],
        gamma=0.1)
]
auto_scale_lr = dict(enable=False, base_batch_size=4)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs,
                    max_keep_ckpts=1),
    # stop at the first NaN / inf loss with one line (stage, iteration)
    non_finite_loss=dict(type='NonFiniteLossHook'))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# `--launcher pytorch` with CPU processes too: the plugin's DDP wrapper and
# its patch of mmengine's launcher (no CUDA device needed)
custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)
model_wrapper_cfg = dict(type='AnyDeviceDistributedDataParallel')
randomness = dict(seed=0)
