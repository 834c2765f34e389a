# MCL pre-training (GuoQiushan/MCL): ResNet-50 + FPN (BN), montage levels
# 224 / 2x2 of 112 / 4x4 of 56 / 8x8 of 28 read from P5 / P4 / P3 / P2,
# 4 shared conv3x3-BN, cell pooling, MLP 256-2048-256, a predictor per level;
# InfoNCE against the momentum encoder's full other view, weights 1/2, 1/4,
# 1/8, 1/8, symmetric. ImageNet 100 epochs, batch 4096, LARS lr 16, wd 1e-5.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

model = dict(
    type='MCL',
    grids=(1, 2, 4, 8),
    level_weights=(0.5, 0.25, 0.125, 0.125),
    fpn_channels=256,
    hid_channels=2048,
    out_channels=256,
    num_convs=4,
    temperature=0.2,
    momentum=0.01,  # paper EMA 0.99 (-> 1 with a momentum hook)
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet', depth=50, out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(
        type='mmdet.FPN', in_channels=[256, 512, 1024, 2048],
        out_channels=256, num_outs=4, norm_cfg=dict(type='BN')))

view_pipeline = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.2, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='train',
                 pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=16., weight_decay=1e-5, momentum=0.9),
    paramwise_cfg=dict(custom_keys={
        'bn': dict(decay_mult=0, lars_exclude=True),
        'bias': dict(decay_mult=0, lars_exclude=True),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=90, by_epoch=True, begin=10,
         end=100)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=4096)
