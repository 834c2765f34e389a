# Mix: CCOP trained on heat-map proposals (semantic-aware localization)
# instead of selective search. Warm-up: the dataset's own boxes (with an
# ann_file without annotations, whole-image boxes); then every `interval`
# epochs HeatmapProposalHook runs the momentum encoder over the images,
# writes the boxes to work_dir and the dataset loads them.
_base_ = ['../ccop/ccop_resnet18-fpn_cpu-tiny.py']

custom_hooks = [
    dict(type='CurriculumHook', schedule='linear'),
    dict(type='RandomStateHook'),
    dict(
        type='HeatmapProposalHook',
        interval=1,
        start_epoch=1,
        img_scale=96,
        generator=dict(num_boxes=8, thr=0.1, window=0.5,
                       suppress_radius=0.5, min_size=8)),
]
max_epochs = 2
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop',
                 max_epochs=max_epochs)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs,
         by_epoch=True, begin=0, end=max_epochs)
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True))
log_processor = dict(by_epoch=True)
