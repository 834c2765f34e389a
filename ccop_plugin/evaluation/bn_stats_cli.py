"""Command line of ``tools/check_bn_stats.py``: do a checkpoint's stored BN
statistics fit the fine-tuning images (:func:`.bn_stats.bn_statistics_drift`)?
:func:`main` prints the per-stage table and returns the exit status: 0 when
the statistics fit, 3 when they do not, 1 on bad input.
"""
import argparse
import sys
from typing import Optional, Sequence

from .bn_stats import bn_statistics_drift, format_drift
from .probe_data import ProbeError

__all__ = ['build_parser', 'main']

DESCRIPTION = "Check whether a checkpoint's stored BN statistics fit your " \
    'images.'


def build_parser() -> argparse.ArgumentParser:
    """``tools/check_bn_stats.py``'s options."""
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument('checkpoint', help='pre-training or converted checkpoint')
    p.add_argument('images', help='folder of fine-tuning images')
    p.add_argument('--num-images', type=int, default=8)
    p.add_argument('--size', type=int, default=320,
                   help='images are resized to SIZE x SIZE')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the check; 0: the statistics fit, 3: they do not, 1: bad input
    (one ``error:`` line on stderr)."""
    a = build_parser().parse_args(argv)
    try:
        res = bn_statistics_drift(a.checkpoint, a.images, a.num_images,
                                  a.size)
    except (ProbeError, ValueError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_drift(res, a.checkpoint))
    return 0 if res['ok'] else 3
