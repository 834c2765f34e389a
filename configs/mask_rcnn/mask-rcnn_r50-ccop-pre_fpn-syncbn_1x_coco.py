# As CCOP's own Detectron2 benchmark (configs/coco_R_50_FPN_1x_moco.yaml of
# the reference code): SyncBN in backbone and FPN, FREEZE_AT 0, the default
# 2fc box head and plain mask head (no norm in the heads).
_base_ = ['./mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco.py']

model = dict(
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='Shared2FCBBoxHead',
            in_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_head=dict(norm_cfg=None)))
