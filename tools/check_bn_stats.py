#!/usr/bin/env python
"""Check whether a checkpoint's stored BN statistics fit your images.

    python tools/check_bn_stats.py ccop_r50_mmdet.pth data/coco/val2017

Prints, per ResNet stage, the output's spread with the stored statistics
(eval mode, what mmdet's plain protocol uses) and with the images' own batch
statistics, and their ratio. Outside [0.5, 2]: fine-tune with
``model.backbone.norm_eval=False model.backbone.frozen_stages=-1``
(docs/troubleshooting.md). Exit 0 when the statistics fit, 3 when they do
not, 1 on bad input.
"""
import sys

from ccop_plugin.evaluation.bn_stats_cli import main

if __name__ == '__main__':
    sys.exit(main())
