# PLRC pre-training (Bai et al., CVPR 2022; facebookresearch/PLRC):
# ResNet-50 C5, 4x4 grid pseudo-regions carried through the crops, 224 views
# scale (0.2, 1), image MoCo (queue 65536, T 0.2) + point contrast (T 0.2) +
# point-affinity distillation (DINO-style, teacher T 0.04 -> 0.07 over 30
# epochs); weights as the released code applies them: 1, 0.7*0.3, 0.7*0.3.
# ImageNet 100 epochs, batch 256 (8 x 32), SGD lr 0.03 cosine.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

model = dict(
    type='PLRC',
    queue_len=65536,
    feat_dim=128,
    momentum=0.001,  # paper 0.999
    num_points=16,  # kept per region ...
    num_sampled_points=32,  # ... of 32 sampled (released)
    distill_points='dense',  # every query-map position inside view 2
    img_loss_weight=1.,
    point_loss_weight=0.21,
    distill_loss_weight=0.21,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet', depth=50, out_indices=(3, ), norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='MoCoV2Neck', in_channels=2048, hid_channels=2048,
        out_channels=128, with_avg_pool=True),
    head=dict(
        type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
        temperature=0.2),
    point_neck=dict(
        type='DensePointNeck', in_channels=2048, hid_channels=2048,
        out_channels=128, scale=8),
    proto_head=dict(
        type='PointPrototypeHead', in_channels=2048, hid_channels=2048,
        bottleneck=256, num_prototypes=4096, num_layers=3, use_bn=True,
        scale=8),
    point_head=dict(type='PointContrastHead', temperature=0.2),
    distill_head=dict(
        type='PointDistillationHead',
        num_key_points=56 * 56,  # key-view dense map (7x7 C5 upsampled x8)
        num_prototypes=4096,
        distill_prototypes=True,
        affinity_scale=1. / 128,
        student_temp=0.1,
        teacher_temp=0.04,  # start value; TeacherTempWarmupHook warms it up
        center_momentum=0.9))
# teacher temperature 0.04 -> 0.07 over 30 epochs of ImageNet at 256
custom_hooks = [
    dict(type='TeacherTempWarmupHook', start=0.04, end=0.07,
         warmup_iters=30 * 5005)
]

photometric_pipeline = [
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=0.5),
]
region_pipeline = [dict(type='GridRegions', grid=4)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    *region_pipeline,
    dict(type='BoxAwareMultiView', num_views=3, size=224, scale=(0.2, 1.),
         part_thr=0.01, area_thr=0, min_num_boxes=4, max_tries=10,
         flip_prob=0.5, transforms=photometric_pipeline),
    dict(type='PackBoxSelfSupInputs',
         meta_keys=('img_path', 'ori_shape', 'img_shape', 'view_flips',
                    'view_crops')),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ImageNet',
        data_root='data/imagenet/',
        split='train',
        pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=1e-4, momentum=0.9))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=100, by_epoch=True, begin=0,
         end=100)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    # stop at the first NaN / inf loss with one line (stage, iteration)
    non_finite_loss=dict(type='NonFiniteLossHook'))
auto_scale_lr = dict(base_batch_size=256)
