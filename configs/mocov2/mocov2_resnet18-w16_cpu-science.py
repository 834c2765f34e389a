# mmpretrain's MoCo v2 under the science protocol
# (../_base_/protocols/cpu-science.py: ResNet-18 of base width 16, 128-px
# views, queue 256, key momentum 0.99, batch 32), the positive control of
# `make science` (docs/science.md). Images: any folder, no labels, no
# proposals; pass the folder with
#   --cfg-options train_dataloader.dataset.data_root=/path/to/images/
_base_ = [
    'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
    '../_base_/protocols/cpu-science.py',
]

custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

model = dict(
    queue_len=_base_.science_queue_len,
    momentum=_base_.science_momentum,
    backbone=_base_.science_backbone,
    neck=dict(in_channels=_base_.science_feat,
              hid_channels=_base_.science_feat),
    head=dict(temperature=_base_.science_temperature))

view_pipeline = [
    dict(type='RandomResizedCrop', scale=_base_.science_crop,
         crop_ratio_range=_base_.science_scale, backend='pillow'),
    *_base_.science_photometric,
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs')
]
train_dataloader = dict(
    **_base_.science_dataloader,
    # redefined: dicts inherited through `mmpretrain::` carry a `_scope_` key
    # that mmengine passes on to the collate function
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    collate_fn=dict(_delete_=True, type='default_collate'),
    dataset=dict(
        _delete_=True,
        type='CustomDataset',
        data_root='data/demo/images/',
        ann_file='',
        with_label=False,
        pipeline=train_pipeline))

optim_wrapper = _base_.science_optim_wrapper
param_scheduler = _base_.science_param_scheduler
train_cfg = _base_.science_train_cfg
default_hooks = _base_.science_default_hooks
log_processor = _base_.science_log_processor
env_cfg = dict(dist_cfg=dict(backend='gloo'))
auto_scale_lr = _base_.science_auto_scale_lr
randomness = _base_.science_randomness
