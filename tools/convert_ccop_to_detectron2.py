#!/usr/bin/env python
"""Convert a CCOP checkpoint to Detectron2 (.pkl); see convert_ccop_to_mmdet.

    python tools/convert_ccop_to_detectron2.py CKPT ccop_r50_d2.pkl [--no-fpn]

Detectron2 settings that match: MODEL.RESNETS.STRIDE_IN_1X1 False,
MODEL.FPN.NORM "SyncBN" (CCOP's FPN has BN), INPUT.FORMAT "RGB" with
PIXEL_MEAN [123.675, 116.28, 103.53], PIXEL_STD [58.395, 57.12, 57.375].
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from convert_ccop_to_mmdet import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(default_format='detectron2'))
