# Mix: PLRC's point-level losses on selective-search proposals (CCOP's data
# side: LoadProposals + BoxAwareMultiView) instead of the 4x4 grid.
_base_ = ['../plrc/plrc_resnet18_cpu-tiny.py']

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals', max_num=16),
    dict(type='BoxAwareMultiView', num_views=3, size=64, scale=(0.2, 1.),
         part_thr=0.6, area_thr=0, min_num_boxes=1, max_tries=10,
         flip_prob=0.5, transforms={{_base_.photometric_pipeline}}),
    dict(type='PackBoxSelfSupInputs',
         meta_keys=('img_path', 'ori_shape', 'img_shape', 'view_flips',
                    'view_crops')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
