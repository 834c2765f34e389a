"""Command line of ``tools/linear_probe.py``: the object-level linear probe
of a pre-training checkpoint (:func:`.linear_probe.linear_probe`), of a
random initialisation ("none") or of the supervised positive control
("supervised", :func:`.supervised_control.supervised_probe`); :func:`main`
prints one line and returns the exit status.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from .linear_probe import POOL, STAGES, linear_probe
from .probe_data import ProbeError

__all__ = ['build_parser', 'parse_args', 'main']

DESCRIPTION = 'Object-level linear probe of a pre-training checkpoint.'
#: the ResNet stages by name (index 0 is C2, stride 4)
LAYERS = ('C2', 'C3', 'C4', 'C5')


def build_parser() -> argparse.ArgumentParser:
    """``tools/linear_probe.py``'s options."""
    p = argparse.ArgumentParser(
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('checkpoint',
                   help='CCOP / mmpretrain (MoCo v2, DenseCL) / torchvision '
                   'checkpoint, "none" for a random initialisation or '
                   '"supervised" for the supervised positive control')
    p.add_argument('--data-root', required=True,
                   help='the synthetic dataset (tools/generate_dataset.py)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the random initialisation (and of the '
                   'supervised training)')
    p.add_argument('--width', type=int, default=64,
                   help='stem and base channels of the random '
                   'initialisation and of the supervised control (16: the '
                   'science protocol); a checkpoint\'s width is read from '
                   'it')
    p.add_argument('--train-split', default='train')
    p.add_argument('--val-split', default='val',
                   help='the split the accuracy is measured on')
    p.add_argument('--select-split', default='val',
                   help='the split the weight decay and iterations are '
                   'chosen on; "none": no choice (--weight-decay 1e-2, '
                   '--max-iter 300 unless given)')
    p.add_argument('--features', default='backbone',
                   choices=['backbone', 'box_stats', 'mask_texture'],
                   help='box_stats / mask_texture: trivial colour+size / '
                   'texture-of-the-mask-interior baselines (no network)')
    p.add_argument('--pool', type=int, default=POOL,
                   help='RoI features average-pooled to POOL x POOL')
    p.add_argument('--stages', nargs='+', choices=LAYERS,
                   default=[LAYERS[s] for s in STAGES],
                   help='backbone stages whose RoI cells are concatenated')
    p.add_argument('--no-fpn', action='store_true',
                   help='accepted for old commands: the probe never reads '
                   'an FPN now')
    p.add_argument('--weight-decay', type=float, default=None,
                   help='fix the L2 weight (default: chosen on '
                   '--select-split)')
    p.add_argument('--max-iter', type=int, default=None,
                   help='fix the L-BFGS iterations (default: chosen on '
                   '--select-split)')
    p.add_argument('--supervised-steps', type=int, default=None,
                   help='optimisation steps of the supervised control\'s '
                   'training (default: the library\'s STEPS)')
    p.add_argument('--out', help='write the result as JSON')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out file')
    return p


def parse_args(argv: Optional[Sequence[str]] = None
               ) -> argparse.Namespace:
    """The parsed options (argparse exits on a bad one)."""
    return build_parser().parse_args(argv)


def _check_paths(a) -> str:
    """The one-line problem with the arguments, or ''."""
    if a.out and osp.isdir(a.out):
        return f'{a.out}: is a directory; give the output file'
    if a.out and osp.exists(a.out) and not a.overwrite:
        return f'{a.out}: exists; pass --overwrite to replace it'
    if (a.checkpoint.lower() not in ('none', 'supervised')
            and not osp.isfile(a.checkpoint)):
        return f'{a.checkpoint}: no such checkpoint file'
    return ''


def _run(a):
    kw = dict(seed=a.seed, train_split=a.train_split, val_split=a.val_split,
              select_split=None if a.select_split.lower() == 'none'
              else a.select_split,
              features=a.features, pool=a.pool, weight_decay=a.weight_decay,
              max_iter=a.max_iter,
              stages=tuple(sorted(LAYERS.index(s) for s in set(a.stages))))
    if a.checkpoint.lower() == 'supervised':
        from .supervised_control import supervised_probe
        if a.supervised_steps is not None:
            kw['steps'] = a.supervised_steps
        return supervised_probe(a.data_root, width=a.width, **kw)
    ckpt = None if a.checkpoint.lower() == 'none' else a.checkpoint
    return linear_probe(ckpt, a.data_root, random_width=a.width, **kw)


def _summary(a, res) -> str:
    name = res['encoder']['source']
    if a.checkpoint.lower() == 'none' and a.features == 'backbone':
        name = f'random init (seed {a.seed})'
    elif a.checkpoint.lower() == 'supervised':
        name = f'supervised control (seed {a.seed})'
    line = (f'{name}: object accuracy {100 * res["acc"]:.1f}% on '
            f'{res["n_val"]} {a.val_split} objects (chance '
            f'{100 * res["chance"]:.1f}%, train {100 * res["train_acc"]:.1f}%')
    if res.get('select_acc') is not None:
        line += (f', {res["select_split"]} {100 * res["select_acc"]:.1f}%; '
                 f'weight decay {res["weight_decay"]:g}, {res["max_iter"]} '
                 f'iterations chosen on {res["select_split"]}')
        if res['selected_on_scored_split']:
            line += ' (the scored split: optimistic)'
    return line + (f'), fitted on {res["n_train"]}, {res["num_classes"]} '
                   f'classes, {res["feature_dim"]}-d features, '
                   f'{res["seconds"]:.1f} s')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Probe, print one line, write ``--out``; 1 with one ``error:`` line
    for a bad path, a dataset the probe cannot read or an unwritable
    ``--out``, else 0."""
    a = parse_args(argv)
    problem = _check_paths(a)
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return 1
    try:
        res = _run(a)
    except (ProbeError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(_summary(a, res))
    if a.out:
        from ..utils.fileio import atomic_write_json
        try:
            atomic_write_json(a.out, res)
        except OSError as e:
            print(f'error: {a.out}: cannot write ({e})', file=sys.stderr)
            return 1
    return 0

