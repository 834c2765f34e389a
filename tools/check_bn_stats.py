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
import argparse
import sys

from ccop_plugin.evaluation import bn_statistics_drift, format_drift
from ccop_plugin.evaluation.linear_probe import ProbeError


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('checkpoint', help='pre-training or converted checkpoint')
    p.add_argument('images', help='folder of fine-tuning images')
    p.add_argument('--num-images', type=int, default=8)
    p.add_argument('--size', type=int, default=320,
                   help='images are resized to SIZE x SIZE')
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        res = bn_statistics_drift(a.checkpoint, a.images, a.num_images,
                                  a.size)
    except (ProbeError, ValueError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_drift(res, a.checkpoint))
    return 0 if res['ok'] else 3


if __name__ == '__main__':
    sys.exit(main())
