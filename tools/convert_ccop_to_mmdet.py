#!/usr/bin/env python
"""Convert a CCOP (or mmpretrain MoCo v2 ...) checkpoint for detection.

    python tools/convert_ccop_to_mmdet.py work_dirs/ccop/epoch_800.pth \
        work_dirs/ccop/ccop_r50_fpn_mmdet.pth [--no-fpn] [--config CFG]
    python tools/convert_ccop_to_mmdet.py CKPT out.pkl --format detectron2 \
        [--config d2_config.yaml]

Keeps the query encoder (``backbone.*`` and, unless --no-fpn, the FPN
``neck.*``); drops the momentum encoder, projection necks, heads and queues.
Prints mapped / skipped / missing keys (and, for Detectron2, the settings the
export needs, checked against a Detectron2 yaml with --config); exits 1 when
nothing maps, the input cannot be loaded safely, or the Detectron2 config
does not fit. An existing output file is replaced only with --overwrite
(keeping its permissions); a failed write (e.g. a full disk) keeps it as it
was. Checkpoints are loaded with ``weights_only=True``; files that
need full unpickling only with --trust-checkpoint (or
CCOP_TRUST_CHECKPOINTS=1), for files you trust.
"""
import argparse
import sys

from ccop_plugin.converters import (
    ConversionError,
    check_detectron2_config,
    check_detectron2_output,
    check_output_path,
    convert_to_detectron2,
    convert_to_mmdet,
    detectron2_settings,
    expected_keys_from_config,
    save_detectron2,
    save_mmdet_checkpoint,
)
from ccop_plugin.utils.checkpoint_safety import (
    CheckpointError,
    error_line,
    trust_checkpoints,
)

_YAML = ('.yaml', '.yml')


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
    p.add_argument('--config', help='mmdet: config (.py) of the target '
                   'detector: its backbone/neck keys are the reference for '
                   'skipped and missing keys (default: an mmdet ResNet/FPN '
                   'matching the checkpoint). detectron2: a Detectron2 yaml '
                   'config to check against the settings the export needs '
                   '(_BASE_ followed; nothing written on a mismatch)')
    p.add_argument('--short-names', action='store_true',
                   help='detectron2: names without backbone.bottom_up. '
                   '(matched by suffix)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load an input that safe loading refuses with full '
                   'unpickling, which runs any code the file carries: only '
                   'for files you trust (as CCOP_TRUST_CHECKPOINTS=1)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing output file (never the input; '
                   'its permissions are kept)')
    p.add_argument('--verbose', action='store_true',
                   help='list every mapped key')
    return p.parse_args(argv)


def main(argv=None, default_format='mmdet') -> int:
    args = parse_args(argv, default_format)
    d2 = settings = None
    check_lines, bad = [], 0
    if args.trust_checkpoint:
        trust_checkpoints()
        print('--trust-checkpoint: an input that safe loading refuses is '
              'unpickled in full (it can run code): only for files you '
              'trust', file=sys.stderr)
    try:
        check_output_path(args.src, args.out, overwrite=args.overwrite)
        if args.format == 'detectron2':
            check_detectron2_output(args.out)
            if args.config and not args.config.endswith(_YAML):
                raise ConversionError(
                    f'{args.config}: with --format detectron2, --config is a '
                    'Detectron2 yaml config')
            d2, res = convert_to_detectron2(
                args.src, with_fpn=args.with_fpn,
                full_names=not args.short_names)
            settings = detectron2_settings(d2)
            if args.config:
                check_lines, bad = check_detectron2_config(settings,
                                                           args.config)
        else:
            if args.config and args.config.endswith(_YAML):
                raise ConversionError(
                    f'{args.config}: a Detectron2 config; use it with '
                    '--format detectron2 (--config of mmdet is a .py config)')
            expected = (expected_keys_from_config(args.config, args.with_fpn)
                        if args.config else None)
            res = convert_to_mmdet(args.src, with_fpn=args.with_fpn,
                                   expected=expected)
    except (ConversionError, CheckpointError, FileNotFoundError) as e:
        print(error_line(e), file=sys.stderr)
        return 1
    print(res.report(verbose=args.verbose))
    if settings is not None:
        print('Detectron2 settings this export needs:')
        print('\n'.join('  ' + s.show() for s in settings))
        if check_lines:
            print('\n'.join(check_lines))
        if bad:
            print(f'error: {args.config}: {bad} Detectron2 setting(s) do not '
                  'fit the export (MISMATCH above); nothing written',
                  file=sys.stderr)
            return 1
    try:
        if args.format == 'detectron2':
            save_detectron2(d2, args.out)
        else:
            save_mmdet_checkpoint(res, args.out)
    except (ConversionError, OSError) as e:
        print(f'error: {args.out}: cannot write ({e})', file=sys.stderr)
        return 1
    print(f'saved {len(res.mapped)} tensors to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
