# CCOP on tiny data, CPU, minutes: ResNet-18 + FPN, 96-px views, queues of 256,
# batch 4, 20 iterations. Paths: the embedded dataset and its proposals as
#   python tools/generate_dataset.py --out data/synth
#   python tools/selective_search.py data/synth/images/unlabeled \
#       --ann-file data/synth/annotations/unlabeled.json \
#       --out data/synth/annotations/unlabeled_proposals.json
# write them (the tiny configs share this layout); for other data set all
# three, e.g.
#   --cfg-options train_dataloader.dataset.data_root=/path/ \
#                 train_dataloader.dataset.ann_file=proposals.json \
#                 train_dataloader.dataset.data_prefix.img_path=images/
_base_ = [
    './ccop_resnet50-fpn_8xb32-coslr-800e_coco.py',
    '../_base_/schedules/cpu-tiny_20iters.py',
]

crop_size = 96
model = dict(
    queue_len=256,
    roi_queue_len=256,
    feat_dim=128,
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    img_neck=dict(in_channels=512, hid_channels=512),
    roi_neck=dict(
        in_channels=128,
        hid_channels=512,
        # the paper's sizes scaled by 96 / 224
        assign_sizes=(21, 41, 82, 96),
        dropout=0.),
    curriculum=dict(n_jitter=10))

data_root = 'data/synth/'
# the paper's box-aware pipeline with 96-px views
train_pipeline = _base_.train_pipeline
train_pipeline[2].update(
    size=crop_size,
    area_thr=26)  # 144 px scaled by (96 / 224) ** 2
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/unlabeled_proposals.json',
        data_prefix=dict(img_path='images/unlabeled/'),
        pipeline=train_pipeline))

optim_wrapper = _base_.tiny_optim_wrapper
param_scheduler = _base_.tiny_param_scheduler
train_cfg = _base_.tiny_train_cfg
default_hooks = _base_.tiny_default_hooks
log_processor = _base_.tiny_log_processor
env_cfg = dict(dist_cfg=dict(backend='gloo'))
# DDP for CPU or GPU modules (`--launcher pytorch` with CPU processes too)
model_wrapper_cfg = dict(type='AnyDeviceDistributedDataParallel')
auto_scale_lr = _base_.tiny_auto_scale_lr
randomness = _base_.tiny_randomness
