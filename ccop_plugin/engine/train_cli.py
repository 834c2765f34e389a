"""Command line of ``tools/train.py``: train any ccop_plugin config with
mmengine (:func:`main` returns the exit status; the tool passes it on).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..utils.checkpoint_safety import (
    CheckpointError,
    error_line,
    trust_checkpoints,
)
from ..utils.folder_lock import FolderInUseError
from .hooks import NonFiniteLossError
from .work_dir import WorkDirError, lock_work_dir, plan_training_start

__all__ = ['build_parser', 'parse_args', 'build_config', 'main']


def build_parser() -> argparse.ArgumentParser:
    """``tools/train.py``'s options."""
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or from the latest one in the '
        'work dir when no path is given')
    parser.add_argument(
        '--overwrite-work-dir', action='store_true',
        help='start a new run even if the work dir holds checkpoints of '
        'another run (they are overwritten as this run saves its own)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='load a checkpoint that safe loading (weights_only) refuses '
        'with full unpickling, which runs any code the file carries: only '
        'for files you trust (as CCOP_TRUST_CHECKPOINTS=1)')
    parser.add_argument('--amp', action='store_true', help='mixed precision')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, key=value')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options (``sys.argv`` when ``argv`` is None); sets
    ``LOCAL_RANK`` from ``--local-rank`` unless the launcher did."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args: argparse.Namespace) -> Config:
    """The config file with the command line's overrides (work dir,
    launcher, ``--amp``, ``--cfg-options``)."""
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/train.py``: train; returns the exit status (1 with one
    ``error:`` line for a work dir in use or refused, or a checkpoint
    refused or unreadable)."""
    args = parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoints()
        print('--trust-checkpoint: a checkpoint that safe loading refuses is '
              'unpickled in full (it can run code): only for files you '
              'trust', file=sys.stderr)
    cfg = build_config(args)
    try:
        # held until the process ends: a second run here is refused
        lock = lock_work_dir(cfg.work_dir)  # noqa: F841
    except FolderInUseError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    try:
        resume, load_from = plan_training_start(
            cfg.work_dir, args.resume, overwrite=args.overwrite_work_dir,
            warn=lambda msg: print(msg, file=sys.stderr))
    except WorkDirError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    if resume:
        cfg.resume, cfg.load_from = True, load_from
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
              RUNNERS.build(cfg))
    try:
        runner.train()
    except CheckpointError as e:  # refused or unreadable: one line
        print(error_line(e), file=sys.stderr)
        return 1
    except NonFiniteLossError as e:  # NaN / inf loss: one line
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0
