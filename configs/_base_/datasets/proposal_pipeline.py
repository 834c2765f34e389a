# The box-aware proposal pipeline (CCOP's data side) for ANY mmpretrain
# self-supervised config: inherit this file next to the algorithm's config and
# set
#     train_dataloader = _base_.proposal_dataloader
# It replaces the inherited dataloader as a whole (no `_delete_` or
# `collate_fn` edits in your config) with: ProposalImageDataset (images +
# COCO-style proposals from tools/selective_search.py), LoadProposals,
# BoxAwareMultiView (two 224-px views whose boxes correspond) and
# PackBoxSelfSupInputs (boxes in `view_bboxes`). Stock algorithms (MoCo,
# DenseCL, BYOL) train on it unchanged; `WithObjectBranch` also uses the boxes.
# Change sizes with e.g.
#     train_dataloader = dict(_base_.proposal_dataloader, batch_size=64)
# Names start with `proposal_` so that they never clash with the other base.
# Use it under a config that has a train_dataloader to replace (every
# mmpretrain algorithm config): alone, mmengine would keep the `_delete_` key.
custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)

# MoCo v2's photometric augmentation with CCOP's values (saturation 0.2)
proposal_view_pipeline = [
    dict(
        type='RandomApply',
        transforms=[
            dict(
                type='ColorJitter',
                brightness=0.4,
                contrast=0.4,
                saturation=0.2,
                hue=0.1)
        ],
        prob=0.8),
    dict(
        type='RandomGrayscale',
        prob=0.2,
        keep_channels=True,
        channel_weights=(0.114, 0.587, 0.2989)),
    dict(
        type='GaussianBlur',
        magnitude_range=(0.1, 2.0),
        magnitude_std='inf',
        prob=0.5),
]
proposal_crop_size = 224
proposal_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', max_num=100),
    dict(
        type='BoxAwareMultiView',
        num_views=2,
        size=proposal_crop_size,
        scale=(0.1, 1.),
        ratio=(3. / 4., 4. / 3.),
        part_thr=0.6,
        area_thr=144,
        min_num_boxes=1,
        max_tries=10,
        flip_prob=0.5,
        transforms=[proposal_view_pipeline]),
    dict(type='PackBoxSelfSupInputs'),
]
proposal_dataloader = dict(
    _delete_=True,  # replaces the inherited dataloader entirely
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='ProposalImageDataset',
        data_root='data/coco/',
        ann_file='proposals/selective_search_train2017.json',
        data_prefix=dict(img_path='train2017/'),
        pipeline=proposal_train_pipeline))
