# PLRC on tiny data, CPU: ResNet-18, 64-px views, queue 256, batch 4,
# 2x2 grid regions, 4 of 8 points per region. Data: the layout of
# configs/ccop/ccop_resnet18-fpn_cpu-tiny.py; for other data set all three
#   --cfg-options train_dataloader.dataset.data_root=/path/ \
#                 train_dataloader.dataset.ann_file=proposals.json \
#                 train_dataloader.dataset.data_prefix.img_path=images/
_base_ = ['./plrc_resnet50_8xb32-coslr-100e_in1k.py']

crop_size = 64
model = dict(
    queue_len=256,
    num_points=4,
    num_sampled_points=8,
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=512, hid_channels=256),
    point_neck=dict(in_channels=512, hid_channels=256, scale=8),
    proto_head=dict(
        in_channels=512, hid_channels=256, bottleneck=64,
        num_prototypes=256),
    distill_head=dict(
        num_key_points=16 * 16,  # 2x2 C5 upsampled x8
        num_prototypes=256))
custom_hooks = [
    dict(type='TeacherTempWarmupHook', start=0.04, end=0.07, warmup_iters=10)
]

region_pipeline = [dict(type='GridRegions', grid=2)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    *region_pipeline,
    dict(type='BoxAwareMultiView', num_views=3, size=crop_size,
         scale=(0.2, 1.), part_thr=0.01, area_thr=0, min_num_boxes=2,
         max_tries=10, flip_prob=0.5,
         transforms={{_base_.photometric_pipeline}}),
    dict(type='PackBoxSelfSupInputs',
         meta_keys=('img_path', 'ori_shape', 'img_shape', 'view_flips',
                    'view_crops')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type='ProposalImageDataset',
        # the layout of configs/ccop/ccop_resnet18-fpn_cpu-tiny.py (its
        # comment has the commands that write it)
        data_root='data/synth/',
        ann_file='annotations/unlabeled_proposals.json',
        data_prefix=dict(img_path='images/unlabeled/'),
        pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.03))
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
