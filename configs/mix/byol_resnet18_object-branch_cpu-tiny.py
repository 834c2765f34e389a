# Mix: mmpretrain's BYOL, unchanged, plus CCOP's object branch on the
# proposal pipeline; config only (docs/mixing.md). BYOL runs its online and
# target backbones on both views, so the branch is symmetric (view 0 -> 1 and
# 1 -> 0, averaged) and reuses the target's features (no extra key pass).
# Without the curriculum here (curriculum=None: the key box itself is the
# positive), to show that variant; add it as in the MoCo v2 mix.
# Paper scale: drop the "tiny" overrides below.
_base_ = [
    'mmpretrain::byol/byol_resnet50_16xb256-coslr-200e_in1k.py',
    '../_base_/datasets/proposal_pipeline.py',
    '../_base_/models/object_branch_resnet18_tiny.py',
    '../_base_/schedules/cpu-tiny_20iters.py',
]

model = dict(
    type='WithObjectBranch',
    algorithm='BYOL',
    # without the curriculum; BYOL's base momentum (mmengine convention)
    object_branch=dict(_base_.object_branch_resnet18_tiny, curriculum=None,
                       momentum=0.004),
    # tiny: ResNet-18 with BN (one process), small projector / predictor
    backbone=dict(depth=18, norm_cfg=dict(type='BN'), init_cfg=None),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128),
    head=dict(predictor=dict(in_channels=128, hid_channels=512,
                             out_channels=128)))

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

optim_wrapper = dict(optimizer=dict(lr=0.3))  # LARS, as BYOL's config
param_scheduler = _base_.tiny_param_scheduler
train_cfg = _base_.tiny_train_cfg
default_hooks = _base_.tiny_default_hooks
log_processor = _base_.tiny_log_processor
auto_scale_lr = _base_.tiny_auto_scale_lr
randomness = _base_.tiny_randomness
