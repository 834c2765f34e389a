"""Command line of ``tools/generate_dataset.py``: the embedded synthetic
COCO dataset (:func:`generate_synthetic_coco`); :func:`main` returns the
exit status.
"""
import argparse
import sys
from typing import Optional, Sequence

from . import CLASSES, generate_synthetic_coco

__all__ = ['build_parser', 'main']


def build_parser() -> argparse.ArgumentParser:
    """``tools/generate_dataset.py``'s options."""
    p = argparse.ArgumentParser(
        description='Generate the embedded synthetic COCO dataset '
        '(textured shapes).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--out', default='data/synth', help='output folder')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--img-size', type=int, default=128)
    p.add_argument('--num-unlabeled', type=int, default=200)
    p.add_argument('--num-train', type=int, default=120)
    p.add_argument('--num-val', type=int, default=40)
    p.add_argument('--num-test', type=int, default=0,
                   help='images of a held-out labelled test split')
    p.add_argument('--classes', nargs='+', default=list(CLASSES),
                   choices=list(CLASSES))
    p.add_argument('--min-objects', type=int, default=2)
    p.add_argument('--max-objects', type=int, default=5)
    p.add_argument('--min-scale', type=float, default=0.08,
                   help='smallest object radius / image side')
    p.add_argument('--max-scale', type=float, default=0.25)
    p.add_argument('--min-visible', type=float, default=0.35,
                   help='drop objects less visible than this fraction')
    p.add_argument('--texture-by-class', action='store_true',
                   help='format-1 textures: every object of a class gets '
                   "that class's texture family, so texture alone names the "
                   'class (for the probe\'s saturation check; default: '
                   'texture drawn independently of the class)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace a dataset made with other parameters '
                   '(only files this tool wrote are replaced)')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/generate_dataset.py``: generate, print the splits; returns
    the exit status (1 with one ``error:`` line for refused parameters, a
    folder of other files or a failed write)."""
    a = build_parser().parse_args(argv)
    try:
        meta = generate_synthetic_coco(
            a.out, seed=a.seed, num_unlabeled=a.num_unlabeled,
            num_train=a.num_train, num_val=a.num_val, img_size=a.img_size,
            num_test=a.num_test, texture_by_class=a.texture_by_class,
            overwrite=a.overwrite, verbose=True, classes=tuple(a.classes),
            min_objects=a.min_objects, max_objects=a.max_objects,
            min_scale=a.min_scale, max_scale=a.max_scale,
            min_visible=a.min_visible)
    except (ValueError, OSError) as e:  # OSError: also a full disk
        print(f'error: {e}', file=sys.stderr)
        return 1
    for name, s in meta['splits'].items():
        print(f'{name}: {s["num_images"]} images, {s["num_instances"]} '
              f'instances -> {s["ann_file"]}')
    return 0

