# Mix: mmpretrain's DenseCL, unchanged, plus CCOP's object branch (RoI
# contrast with its own queue, intra-image discrimination, spatial-noise
# curriculum) on the proposal pipeline; config only (docs/mixing.md).
# Paper scale: drop the "tiny" overrides below.
_base_ = [
    'mmpretrain::densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py',
    '../_base_/datasets/proposal_pipeline.py',
]

model = dict(
    type='WithObjectBranch',
    algorithm='DenseCL',
    object_branch=dict(
        type='ObjectBranch',
        in_layers=('layer1', 'layer2', 'layer3', 'layer4'),
        neck=dict(type='mmdet.FPN', in_channels=[64, 128, 256, 512],
                  out_channels=128, num_outs=4, norm_cfg=dict(type='BN')),
        roi_neck=dict(type='ObjectRoINeck', in_channels=128,
                      hid_channels=512, out_channels=128,
                      featmap_strides=(4, 8, 16, 32),
                      assign_sizes=(21, 41, 82, 96)),  # CCOP's x 96 / 224
        roi_head=dict(type='ObjectContrastiveHead', temperature=0.2),
        intra_head=dict(type='IntraObjectDiscriminationHead', margin=0.4,
                        iou_thr=0.05),
        curriculum=dict(type='BoxJitterCurriculum', n_jitter=10),
        roi_queue_len=256,
        feat_dim=128,
        momentum=0.001),  # as MoCo's key encoder
    # tiny: ResNet-18, queue 256
    queue_len=256,
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=512, hid_channels=512))
find_unused_parameters = True  # as DenseCL's config
custom_hooks = [
    dict(type='CurriculumHook', schedule='linear'),
    dict(type='RandomStateHook'),
    dict(type='ProposalStatsHook'),
]

# the proposal pipeline, tiny: 96-px views, batch 4, no workers
train_dataloader = _base_.proposal_dataloader
train_dataloader.update(batch_size=4, num_workers=0, persistent_workers=False)
train_dataloader.dataset.update(data_root='data/demo/',
                                ann_file='proposals.json',
                                data_prefix=dict(img_path='images/'))
train_dataloader.dataset.pipeline[2].update(size=96, area_thr=26)

optim_wrapper = dict(optimizer=dict(lr=0.03))
max_iters = 20
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type='CosineAnnealingLR', T_max=max_iters - 5, by_epoch=False,
         begin=5, end=max_iters)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=10, by_epoch=False,
                    max_keep_ckpts=2),
    logger=dict(type='LoggerHook', interval=5))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=4)
randomness = dict(seed=0)
