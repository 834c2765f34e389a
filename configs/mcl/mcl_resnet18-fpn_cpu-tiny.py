# MCL on tiny data, CPU: ResNet-18 + FPN (64 ch), 64-px views, levels
# 1 / 2x2 / 4x4 / 8x8 (one sub-image = a 2x2 cell), each level of each side
# its own crop (8 views), batch 4, 10 iterations.
_base_ = ['./mcl_resnet50-fpn_lars-coslr-100e_in1k.py']

model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    projector=dict(in_channels=64, hid_channels=128, out_channels=64,
                   num_convs=2),
    head=dict(in_channels=64, hid_channels=128))
view_pipeline = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=8, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    dataset=dict(
        _delete_=True,
        type='ProposalImageDataset',
        # the layout of configs/ccop/ccop_resnet18-fpn_cpu-tiny.py (its
        # comment has the commands that write it)
        data_root='data/synth/',
        ann_file='annotations/unlabeled_proposals.json',
        data_prefix=dict(img_path='images/unlabeled/'),
        pipeline=train_pipeline))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, weight_decay=1e-5, momentum=0.9))
sync_bn = None
max_iters = 10
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters,
         by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, by_epoch=False),
    logger=dict(type='LoggerHook', interval=5))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
auto_scale_lr = dict(base_batch_size=4)
randomness = dict(seed=0)
