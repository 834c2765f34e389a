#!/usr/bin/env python
"""Convert a CCOP checkpoint to Detectron2 (.pkl); see convert_ccop_to_mmdet.

    python tools/convert_ccop_to_detectron2.py CKPT ccop_r50_d2.pkl \
        [--no-fpn] [--config my_d2_config.yaml] [--trust-checkpoint]

Prints the Detectron2 settings the export needs (read off its weights), e.g.
for CCOP's R50-FPN: MODEL.BACKBONE.NAME "build_resnet_fpn_backbone",
MODEL.RESNETS.STRIDE_IN_1X1 False, MODEL.RESNETS.NORM and MODEL.FPN.NORM
"SyncBN" (CCOP's FPN has BN; Detectron2's default "" loads only half of it),
and as advice INPUT.FORMAT "RGB" with PIXEL_MEAN [123.675, 116.28, 103.53],
PIXEL_STD [58.395, 57.12, 57.375]. With --config, a Detectron2 yaml (its
_BASE_ chain followed) is checked against them; nothing is written on a
mismatch.
"""
import sys

from ccop_plugin.converters.cli import main

if __name__ == '__main__':
    sys.exit(main(default_format='detectron2'))
