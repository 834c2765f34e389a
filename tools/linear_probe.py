#!/usr/bin/env python
"""Object-level linear probe of a pre-training checkpoint.

    python tools/linear_probe.py CHECKPOINT --data-root work_dirs/demo/data
    python tools/linear_probe.py none --data-root ... --seed 1   # random init

Frozen backbone (+ FPN when the checkpoint has one), RoIAlign features of the
ground-truth boxes, a logistic regression fitted on the train split and scored
on the val split. Prints one line; --out writes the full result as JSON (an
existing file is kept unless --overwrite).
"""
import argparse
import os.path as osp
import sys

from ccop_plugin.evaluation import ProbeError, linear_probe


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('checkpoint',
                   help='CCOP / mmpretrain (MoCo v2, DenseCL) / torchvision '
                   'checkpoint, or "none" for a random initialisation')
    p.add_argument('--data-root', required=True,
                   help='the synthetic dataset (tools/generate_dataset.py)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the random initialisation')
    p.add_argument('--train-split', default='train')
    p.add_argument('--val-split', default='val')
    p.add_argument('--features', default='backbone',
                   choices=['backbone', 'box_stats', 'mask_texture'],
                   help='box_stats / mask_texture: trivial colour+size / '
                   'texture-of-the-mask-interior baselines (no network)')
    p.add_argument('--pool', type=int, default=1,
                   help='RoI features average-pooled to POOL x POOL')
    p.add_argument('--no-fpn', action='store_true',
                   help='pool C4 + C5 of the backbone even when the '
                   'checkpoint has an FPN')
    p.add_argument('--weight-decay', type=float, default=1e-2)
    p.add_argument('--max-iter', type=int, default=300,
                   help='L-BFGS iterations')
    p.add_argument('--out', help='write the result as JSON')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out file')
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.out and osp.exists(a.out) and not a.overwrite:
        print(f'error: {a.out}: exists; pass --overwrite to replace it',
              file=sys.stderr)
        return 1
    if a.out and osp.isdir(a.out):
        print(f'error: {a.out}: is a directory; give the output file',
              file=sys.stderr)
        return 1
    ckpt = None if a.checkpoint.lower() == 'none' else a.checkpoint
    if ckpt is not None and not osp.isfile(ckpt):
        print(f'error: {ckpt}: no such checkpoint file', file=sys.stderr)
        return 1
    try:
        res = linear_probe(ckpt, a.data_root, seed=a.seed,
                           train_split=a.train_split, val_split=a.val_split,
                           features=a.features, pool=a.pool,
                           weight_decay=a.weight_decay, max_iter=a.max_iter,
                           with_fpn=not a.no_fpn)
    except (ProbeError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    name = res['encoder']['source']
    if ckpt is None and a.features == 'backbone':
        name = f'random init (seed {a.seed})'
    print(f'{name}: object accuracy {100 * res["acc"]:.1f}% '
          f'(chance {100 * res["chance"]:.1f}%, train '
          f'{100 * res["train_acc"]:.1f}%) on {res["n_val"]} {a.val_split} '
          f'objects, fitted on {res["n_train"]}, {res["num_classes"]} '
          f'classes, {res["feature_dim"]}-d features, {res["seconds"]:.1f} s')
    if a.out:
        from ccop_plugin.utils.fileio import atomic_write_json
        try:
            atomic_write_json(a.out, res)
        except OSError as e:
            print(f'error: {a.out}: cannot write ({e})', file=sys.stderr)
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
