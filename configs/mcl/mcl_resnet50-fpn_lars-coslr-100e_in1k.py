# MCL pre-training (GuoQiushan/MCL, configs/selfsup/MCL/MCL.py): ResNet-50 +
# FPN (BN, SyncBN in DDP), montage levels 224 / 2x2 of 112 / 4x4 of 56 / 8x8
# of 28 read from P5 / P4 / P3 / P2, each level of each side cut from its own
# augmented view (8 views: 4 of the BYOL pipeline 1, 4 of pipeline 2), a
# per-cell conv stack (4 conv3x3-BN), cell pooling, MLP 256-2048-256-BN, a
# predictor per level; InfoNCE (T 1.0, scaled by 2T) against the momentum
# encoder's plain other view, weights 1/2, 1/4, 1/8, 1/8, both directions
# summed. EMA 0.99 -> 1 (cosine). ImageNet 100 epochs, batch 4096 (32 x 128),
# LARS lr 16 (= 4096 / 256), wd 1e-5, momentum 0.9, bn/bias excluded,
# 10-epoch linear warm-up on a 100-epoch cosine to 1e-4, grad clip 500.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

model = dict(
    type='MCL',
    grids=(1, 2, 4, 8),
    canvas_ratios=(1., 1 / 4, 1 / 16, 1 / 32),  # released batch_sizes
    momentum=0.01,  # mmengine convention: EMA 0.99 at the start ...
    end_momentum=0.,  # ... -> 1 at the end (CosineEMA, as BYOLHook)
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
        out_channels=256, num_outs=4, norm_cfg=dict(type='BN')),
    projector=dict(
        type='MCLProjector', in_channels=256, hid_channels=2048,
        out_channels=256, num_convs=4),
    head=dict(
        type='MCLHead', in_channels=256, hid_channels=2048,
        level_weights=(0.5, 0.25, 0.125, 0.125),
        temperature=1.0))  # released head T=1.0 (loss scaled by 2T)

# BYOL's asymmetric pair as in the released config: pipeline 2 differs
# only in blur (p 0.1) and solarization (p 0.2)
view_pipeline1 = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.2, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=1.),
    dict(type='Solarize', thr=128, prob=0.),
]
view_pipeline2 = [t.copy() for t in view_pipeline1]
view_pipeline2[4] = dict(view_pipeline1[4], prob=0.1)
view_pipeline2[5] = dict(view_pipeline1[5], prob=0.2)
# views 0-3: levels 0-3 of side A, views 4-7: levels 0-3 of side B
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[4, 4],
         transforms=[view_pipeline1, view_pipeline2]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,  # equal per-rank batches (label offset), as released
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageNet', data_root='data/imagenet/', split='train',
                 pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='LARS', lr=16., weight_decay=1e-5, momentum=0.9),
    clip_grad=dict(max_norm=500, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'bn': dict(decay_mult=0, lars_exclude=True),
        'bias': dict(decay_mult=0, lars_exclude=True),
    }))
# released mmcv schedule: cosine over all 100 epochs to min_lr 1e-4, the
# first 10 epochs (3127 iterations) scaled by a linear warm-up from 1e-4;
# the two chained mmengine schedulers reproduce it (< 0.5 % apart)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=100, eta_min=1e-4, by_epoch=True,
         begin=0, end=100, convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    # stop at the first NaN / inf loss with one line (stage, iteration)
    non_finite_loss=dict(type='NonFiniteLossHook'))
auto_scale_lr = dict(base_batch_size=4096)
sync_bn = 'torch'  # released convert_sync_bn=True
