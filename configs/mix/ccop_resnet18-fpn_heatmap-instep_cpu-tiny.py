# Mix: CCOP with heat-map proposals computed inside the training step from
# the momentum encoder (box source HeatmapBoxSource); warm-up of 2 iterations
# on whole-image boxes. The selective-search boxes of the data pipeline are
# only a fallback.
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

model = dict(
    box_source=dict(
        type='HeatmapBoxSource',
        part_thr=0.6,
        generator=dict(
            num_boxes=8, thr=0.1, window=0.5, suppress_radius=0.5,
            min_size=8, warmup_iters=2, warmup_mode='whole')))
# the base pipeline's PackBoxSelfSupInputs keeps view_crops / view_flips,
# which map the heat-map boxes from the key view into the query view
