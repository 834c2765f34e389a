"""Command line of ``tools/convert_ccop_to_mmdet.py`` and
``tools/convert_ccop_to_detectron2.py`` (the same options; only
``--format``'s default differs). :func:`main` returns the exit status; the
tools only pass it to the shell.
"""
import argparse
import sys
from typing import Optional, Sequence

from ..utils.checkpoint_safety import (
    CheckpointError,
    error_line,
    trust_checkpoints,
)
from . import (
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

__all__ = ['build_parser', 'main']

_YAML = ('.yaml', '.yml')


def build_parser(default_format: str = 'mmdet') -> argparse.ArgumentParser:
    """The converters' options; ``default_format`` is ``--format``'s
    default (``detectron2`` for ``tools/convert_ccop_to_detectron2.py``)."""
    p = argparse.ArgumentParser(
        description='Convert a CCOP (or mmpretrain MoCo v2 ...) checkpoint '
        'for detection.')
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
    return p


def _convert(args: argparse.Namespace):
    """Check the paths and convert (nothing written yet).

    Returns:
        tuple: ``(result, Detectron2 dict or None, Detectron2 settings or
        None, lines of the --config check, number of mismatches)``.

    Raises:
        ConversionError, CheckpointError, FileNotFoundError: One line
            naming the file and the problem.
    """
    d2 = settings = None
    check_lines, bad = [], 0
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
    return res, d2, settings, check_lines, bad


def main(argv: Optional[Sequence[str]] = None,
         default_format: str = 'mmdet') -> int:
    """The converter tools: parse, convert, report, save; returns the exit
    status (1 with one ``error:`` line when nothing can be written)."""
    args = build_parser(default_format).parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoints()
        print('--trust-checkpoint: an input that safe loading refuses is '
              'unpickled in full (it can run code): only for files you '
              'trust', file=sys.stderr)
    try:
        res, d2, settings, check_lines, bad = _convert(args)
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

