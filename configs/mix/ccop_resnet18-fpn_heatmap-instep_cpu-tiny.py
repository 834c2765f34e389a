# Mix: CCOP with heat-map proposals computed inside the training step from
# the momentum encoder (HeatmapCCOP); warm-up of 2 iterations on whole-image
# boxes. The selective-search boxes of the data pipeline are only a fallback.
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(
    type='HeatmapCCOP',
    part_thr=0.6,
    proposal_generator=dict(
        num_boxes=8, thr=0.1, window=0.5, suppress_radius=0.5, min_size=8,
        warmup_iters=2, warmup_mode='whole'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', max_num=100),
    dict(
        type='BoxAwareMultiView',
        num_views=2,
        size={{_base_.crop_size}},
        scale=(0.1, 1.),
        ratio=(3. / 4., 4. / 3.),
        part_thr=0.6,
        area_thr=26,
        min_num_boxes=1,
        max_tries=10,
        flip_prob=0.5,
        transforms=[{{_base_.photometric_pipeline}}]),
    dict(
        type='PackBoxSelfSupInputs',
        meta_keys=('img_path', 'ori_shape', 'img_shape', 'view_flips',
                   'view_crops')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
