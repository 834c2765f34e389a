# CCOP under the science protocol (../_base_/protocols/cpu-science.py:
# ResNet-18 of base width 16, 128-px views, queues of 256, key momentum 0.99,
# batch 32) -- the same image branch, data, views and schedule as
# ../mocov2/mocov2_resnet18-w16_cpu-science.py, plus the object branch
# (FPN of 64 channels, RoI sizes scaled by the view size / 224). Paths point at
# data/demo; override them with e.g.
#   --cfg-options train_dataloader.dataset.data_root=/path/ \
#                 train_dataloader.dataset.ann_file=proposals.json
_base_ = [
    './ccop_resnet50-fpn_8xb32-coslr-800e_coco.py',
    '../_base_/protocols/cpu-science.py',
]

w = _base_.science_width
model = dict(
    queue_len=_base_.science_queue_len,
    roi_queue_len=_base_.science_queue_len,
    feat_dim=128,
    momentum=_base_.science_momentum,
    backbone=_base_.science_backbone,
    neck=dict(in_channels=[w, 2 * w, 4 * w, 8 * w], out_channels=64),
    # PyTorch's default init, as MoCo v2's neck under this protocol: the
    # released N(0, 0.01) init left the image InfoNCE near chance at this
    # budget (docs/science.md, "Why CCOP's image branch stays near chance")
    img_neck=dict(in_channels=_base_.science_feat,
                  hid_channels=_base_.science_feat,
                  init_cfg=None),
    roi_neck=dict(
        in_channels=64,
        hid_channels=_base_.science_feat,
        # the paper's sizes scaled by the view size / 224
        assign_sizes=_base_.science_roi_assign_sizes,
        dropout=0.),
    head=dict(temperature=_base_.science_temperature),
    roi_head=dict(temperature=_base_.science_temperature),
    curriculum=dict(n_jitter=10))

data_root = 'data/demo/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', max_num=100),
    dict(
        type='BoxAwareMultiView',
        num_views=2,
        size=_base_.science_crop,
        scale=_base_.science_scale,
        ratio=(3. / 4., 4. / 3.),
        part_thr=0.6,
        area_thr=_base_.science_box_area_thr,  # 144 px scaled alike
        min_num_boxes=1,
        max_tries=10,
        flip_prob=0.5,
        transforms=[_base_.science_photometric]),
    dict(type='PackBoxSelfSupInputs'),
]
train_dataloader = dict(
    **_base_.science_dataloader,
    dataset=dict(
        data_root=data_root,
        ann_file='proposals.json',
        data_prefix=dict(img_path='images/'),
        pipeline=train_pipeline))

optim_wrapper = _base_.science_optim_wrapper
param_scheduler = _base_.science_param_scheduler
train_cfg = _base_.science_train_cfg
default_hooks = _base_.science_default_hooks
log_processor = _base_.science_log_processor
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# DDP for CPU or GPU modules (`--launcher pytorch` with CPU processes too)
model_wrapper_cfg = dict(type='AnyDeviceDistributedDataParallel')
auto_scale_lr = _base_.science_auto_scale_lr
randomness = _base_.science_randomness
