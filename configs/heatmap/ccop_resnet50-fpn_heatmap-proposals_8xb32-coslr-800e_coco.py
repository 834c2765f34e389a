# Semantic-aware localization (Geng & Huang, CICAI 2023) as CCOP's proposal
# source: no selective search. The image list is COCO's
# annotations/instances_train2017.json (the training images; COCO ships no
# image_info_train2017.json), read as an image list only
# (proposals_from_ann_file=False: its ground-truth boxes never reach
# training): the first 20 epochs use whole-image boxes, then every 20 epochs
# (ContrastiveCrop's schedule) the momentum encoder's C5 heat map (channel
# sum, min-max, thr 0.1) gives up to 8 centre-suppressed boxes per image.
_base_ = ['../ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py']

custom_hooks = [
    dict(type='CurriculumHook', schedule='linear'),
    dict(type='RandomStateHook'),
    dict(
        type='HeatmapProposalHook',
        interval=20,
        start_epoch=20,
        img_scale=224,
        generator=dict(num_boxes=8, thr=0.1, window=0.5,
                       suppress_radius=0.5, min_size=20)),
]
# the hook makes the dataset load each new file and restarts the persistent
# data-loader workers, so they see it
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train2017.json',
                 proposals_from_ann_file=False))
