# Mix: mmpretrain's DenseCL, unchanged, plus CCOP's object branch (RoI
# contrast with its own queue, intra-image discrimination, spatial-noise
# curriculum) on the proposal pipeline; config only (docs/mixing.md).
# Paper scale: drop the "tiny" overrides below.
_base_ = [
    'mmpretrain::densecl/densecl_resnet50_8xb32-coslr-200e_in1k.py',
    '../_base_/datasets/proposal_pipeline.py',
    '../_base_/models/object_branch_resnet18_tiny.py',
    '../_base_/schedules/cpu-tiny_20iters.py',
]

model = dict(
    type='WithObjectBranch',
    algorithm='DenseCL',
    object_branch=_base_.object_branch_resnet18_tiny,
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
# data: the layout of configs/ccop/ccop_resnet18-fpn_cpu-tiny.py (its comment
# has the commands that write it)
train_dataloader.dataset.update(
    data_root='data/synth/',
    ann_file='annotations/unlabeled_proposals.json',
    data_prefix=dict(img_path='images/unlabeled/'))
train_dataloader.dataset.pipeline[2].update(size=96, area_thr=26)

optim_wrapper = _base_.tiny_optim_wrapper
param_scheduler = _base_.tiny_param_scheduler
train_cfg = _base_.tiny_train_cfg
default_hooks = _base_.tiny_default_hooks
log_processor = _base_.tiny_log_processor
auto_scale_lr = _base_.tiny_auto_scale_lr
randomness = _base_.tiny_randomness
