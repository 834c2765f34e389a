#!/usr/bin/env python
"""Convert a CCOP (or mmpretrain MoCo v2 ...) checkpoint for detection.

    python tools/convert_ccop_to_mmdet.py work_dirs/ccop/epoch_800.pth \
        work_dirs/ccop/ccop_r50_fpn_mmdet.pth [--no-fpn] [--config CFG]
    python tools/convert_ccop_to_mmdet.py CKPT out.pkl --format detectron2

Keeps the query encoder (``backbone.*`` and, unless --no-fpn, the FPN
``neck.*``); drops the momentum encoder, projection necks, heads and queues.
Prints mapped / skipped / missing keys; exits 1 when nothing maps.
"""
import argparse
import sys

from ccop_plugin.converters import (ConversionError, convert_to_detectron2,
                                    convert_to_mmdet,
                                    expected_keys_from_config,
                                    save_detectron2, save_mmdet_checkpoint)


def parse_args(argv=None, default_format='mmdet'):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('src', help='pre-training checkpoint (.pth)')
    p.add_argument('out', help='output (.pth for mmdet, .pkl for D2)')
    p.add_argument('--format', choices=['mmdet', 'detectron2'],
                   default=default_format)
    p.add_argument('--with-fpn', dest='with_fpn', action='store_true',
                   default=True, help='transfer the FPN too (default)')
    p.add_argument('--no-fpn', dest='with_fpn', action='store_false',
                   help='backbone only')
    p.add_argument('--config', help='mmdet config of the target detector: '
                   'its backbone/neck keys are the reference for skipped '
                   'and missing keys (default: an mmdet ResNet/FPN matching '
                   'the checkpoint)')
    p.add_argument('--short-names', action='store_true',
                   help='detectron2: names without backbone.bottom_up. '
                   '(matched by suffix)')
    p.add_argument('--verbose', action='store_true',
                   help='list every mapped key')
    return p.parse_args(argv)


def main(argv=None, default_format='mmdet') -> int:
    args = parse_args(argv, default_format)
    try:
        if args.format == 'detectron2':
            d2, res = convert_to_detectron2(
                args.src, with_fpn=args.with_fpn,
                full_names=not args.short_names)
        else:
            expected = (expected_keys_from_config(args.config, args.with_fpn)
                        if args.config else None)
            res = convert_to_mmdet(args.src, with_fpn=args.with_fpn,
                                   expected=expected)
    except (ConversionError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(res.report(verbose=args.verbose))
    if args.format == 'detectron2':
        save_detectron2(d2, args.out)
    else:
        save_mmdet_checkpoint(res, args.out)
    print(f'saved {len(res.mapped)} tensors to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
