# mmpretrain's MoCo v2 at the scale of configs/ccop/ccop_resnet18-fpn_cpu-tiny.py
# (ResNet-18, 96-px views, queue 256, same optimiser and schedule), for the
# CCOP / MoCo v2 / scratch comparison on the synthetic data
# (tools/compare_pretraining.py). Images: any folder, no labels, no proposals.
_base_ = [
    'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
    '../_base_/schedules/cpu-tiny_20iters.py',
]

custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

crop_size = 96
model = dict(
    queue_len=256,
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=512, hid_channels=512))

view_pipeline = [
    dict(type='RandomResizedCrop', scale=crop_size, crop_ratio_range=(0.1, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.2, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
         prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    # redefined: dicts inherited through `mmpretrain::` carry a `_scope_` key
    # that mmengine passes on to the collate function
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    collate_fn=dict(_delete_=True, type='default_collate'),
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        # the unlabeled images of tools/generate_dataset.py --out data/synth
        data_root='data/synth/images/unlabeled/',
        ann_file='',
        with_label=False,
        pipeline=train_pipeline))

optim_wrapper = _base_.tiny_optim_wrapper
param_scheduler = _base_.tiny_param_scheduler
train_cfg = _base_.tiny_train_cfg
default_hooks = _base_.tiny_default_hooks
log_processor = _base_.tiny_log_processor
env_cfg = dict(dist_cfg=dict(backend='gloo'))
auto_scale_lr = _base_.tiny_auto_scale_lr
randomness = _base_.tiny_randomness
