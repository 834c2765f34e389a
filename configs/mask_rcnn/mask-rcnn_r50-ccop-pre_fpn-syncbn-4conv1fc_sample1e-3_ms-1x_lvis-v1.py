# Mask R-CNN R50-FPN on LVIS v1 (mmdet's repeat-factor sampling 1e-3,
# multi-scale, 1x), fine-tuned from CCOP with the self-supervised protocol:
# SyncBN in backbone, FPN and heads, 4conv1fc box head, no frozen stage,
# pre-trained backbone + FPN (see the COCO config of the same name).
_base_ = [
    'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py',
    '../_base_/models/mask-rcnn_ccop-pre_fpn-syncbn-4conv1fc.py',
]

model = _base_.ssl_protocol_model

optim_wrapper = _base_.ssl_protocol_optim_wrapper
default_hooks = _base_.ssl_protocol_default_hooks
