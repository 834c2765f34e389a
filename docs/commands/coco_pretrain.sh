# 1. selective-search proposals for train2017 (all cores; resumable; shardable)
python tools/selective_search.py data/coco/train2017 \
    --ann-file data/coco/annotations/instances_train2017.json \
    --out data/coco/proposals/selective_search_train2017.json
# 2. pre-train, 8 GPUs x 32 images (the paper's setting)
mim train mmpretrain configs/ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py \
    --launcher pytorch --gpus 8
#    or: bash tools/dist_train.sh configs/ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py 8
# 3. convert the query encoder (backbone + FPN) for mmdet
python tools/convert_ccop_to_mmdet.py \
    work_dirs/ccop_resnet50-fpn_8xb32-coslr-800e_coco/epoch_800.pth \
    ccop_r50_fpn_mmdet.pth
# 4. fine-tune Mask R-CNN (the papers' protocol: SyncBN, 4conv1fc, FPN transferred)
mim train mmdet configs/mask_rcnn/mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco.py \
    --launcher pytorch --gpus 8 \
    --cfg-options model.init_cfg.checkpoint=ccop_r50_fpn_mmdet.pth
# 5. evaluate on val2017 (bbox and mask AP; training also evaluates every epoch)
mim test mmdet configs/mask_rcnn/mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco.py \
    --checkpoint work_dirs/mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco/epoch_12.pth \
    --launcher pytorch --gpus 8
# 4'. or mmdet's plain protocol (stage 1 and BN frozen, 2fc head): backbone only
python tools/convert_ccop_to_mmdet.py \
    work_dirs/ccop_resnet50-fpn_8xb32-coslr-800e_coco/epoch_800.pth \
    ccop_r50_mmdet.pth --no-fpn
mim train mmdet configs/mask_rcnn/mask-rcnn_r50-ccop-pre_fpn_1x_coco.py \
    --launcher pytorch --gpus 8 \
    --cfg-options model.backbone.init_cfg.checkpoint=ccop_r50_mmdet.pth
#    the plain protocol uses the checkpoint's stored BN statistics; after a short
#    pre-training they do not fit (python tools/check_bn_stats.py ccop_r50_mmdet.pth
#    data/coco/val2017 says so): add model.backbone.norm_eval=False
#    model.backbone.frozen_stages=-1 to --cfg-options (docs/troubleshooting.md)
