# Mask R-CNN of the science protocol (docs/science.md): the CPU detector of
# ./mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py with the backbone
# and FPN of the cpu-science pre-training checkpoints
# (../_base_/protocols/cpu-science.py: ResNet-18 of base width 16, FPN of 64
# channels), so that every pre-trained backbone and FPN weight transfers
# (the converter maps weights by the target's shapes; a width-64 detector
# keeps none of them). Fine-tune a converted checkpoint with
#   python tools/train.py <this config> --cfg-options \
#       model.init_cfg.type=Pretrained \
#       model.init_cfg.checkpoint=work_dirs/ccop_science/mmdet_init.pth
_base_ = ['./mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py']

science_width = 16
fpn_channels = 64

model = dict(
    backbone=dict(stem_channels=science_width, base_channels=science_width),
    neck=dict(
        in_channels=[science_width * 2**i for i in range(4)],
        out_channels=fpn_channels),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(in_channels=fpn_channels)))
