# CCOP pre-training, paper setting (arXiv 2111.13651; reference config
# ChenhongyiYang/CCOP configs/selfsup/ccop/r50_d2.py):
# ResNet-50 + FPN (BN), 8 GPUs x 32 images, SGD lr 0.3 (momentum 0.9, wd 1e-4),
# 10-epoch linear warm-up then cosine, 800 epochs on COCO train2017 with
# selective-search proposals (tools/selective_search.py).
_base_ = [
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/datasets/proposal_pipeline.py',
]

custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

# ---------------------------------------------------------------- model
model = dict(
    type='CCOP',
    queue_len=65536,
    roi_queue_len=65536,
    feat_dim=128,
    momentum=0.001,  # mmengine EMA convention == paper momentum 0.999
    img_loss_weight=1.,
    roi_loss_weight=1.,
    intra_loss_weight=1.,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='ResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN'),
        zero_init_residual=False),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4,  # P2-P5
        norm_cfg=dict(type='BN')),
    img_neck=dict(
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True,
        init_cfg=dict(type='Normal', std=0.01, bias=0., layer='Linear')),
    roi_neck=dict(
        type='ObjectRoINeck',
        in_channels=256,
        hid_channels=2048,
        out_channels=128,
        roi_size=7,
        featmap_strides=(4, 8, 16, 32),
        assign_sizes=(48, 96, 192, 224),  # reference (224, 192, 96, 48)
        sampling_ratio=0,
        aligned=True,
        dropout=0.1),  # reference LinearNormNeck(dropout_p=0.1)
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='CrossEntropyLoss'),
        temperature=0.2),
    roi_head=dict(type='ObjectContrastiveHead', temperature=0.2),
    intra_head=dict(
        type='IntraObjectDiscriminationHead',
        margin=0.4,
        iou_thr=0.05,
        anchor='query'),  # 'key' reproduces the released code
    curriculum=dict(
        type='BoxJitterCurriculum',
        n_jitter=10,
        iou_thr=(0.8, 0.4),
        mag_xy=(0.15, 0.6),
        mag_wh=(0.35, 1.4)))

# ---------------------------------------------------------------- data
dataset_type = 'ProposalImageDataset'
data_root = 'data/coco/'
# the default proposal path, written by the README's step 1
# (docs/commands/coco_pretrain.sh):
#   python tools/selective_search.py data/coco/train2017 \
#       --ann-file data/coco/annotations/instances_train2017.json \
#       --out data/coco/proposals/selective_search_train2017.json
ann_file = 'proposals/selective_search_train2017.json'
img_prefix = 'train2017/'

# the box-aware proposal pipeline (configs/_base_/datasets/
# proposal_pipeline.py): MoCo v2's photometric augmentation with CCOP's
# values (saturation 0.2) in box-aware views: RandomResizedCrop 224, scale
# (0.1, 1), ratio (3/4, 4/3), a box is kept when > 60% of its area survives
# and its area in both views is > 144 px, >= 1 box, 10 tries, horizontal
# flip 0.5 per view (reference ContrastiveBox / ScaleInstanceContrastAug).
photometric_pipeline = _base_.proposal_view_pipeline
train_pipeline = _base_.proposal_train_pipeline

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=dict(img_path=img_prefix),
        pipeline=train_pipeline))

# ---------------------------------------------------------------- schedule
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.3, momentum=0.9, weight_decay=1e-4))

max_epochs = 800
warmup_epochs = 10
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,  # reference warmup_ratio
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)

# spatial-noise curriculum, linear over the whole training (runner.max_iters)
custom_hooks = [
    dict(type='CurriculumHook', schedule='linear'),
    # random state in every checkpoint: a resumed run is the uninterrupted one
    dict(type='RandomStateHook'),
    # proposal counts (kept / invalid / whole-image fallbacks) per epoch
    dict(type='ProposalStatsHook'),
]

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=50, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=50),
    # stop at the first NaN / inf loss with one line (stage, iteration)
    non_finite_loss=dict(type='NonFiniteLossHook'))

# lr 0.3 is for 8 GPUs x 32 images
auto_scale_lr = dict(base_batch_size=256)
