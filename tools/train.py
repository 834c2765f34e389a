"""Train any ccop_plugin config (pre-training or fine-tuning) with mmengine.

Equivalent to ``mim train mmpretrain|mmdet <config>`` without needing mim:
the config's ``default_scope`` picks the registries. Examples::

    python tools/train.py configs/ccop/ccop_resnet18-fpn_cpu-tiny.py
    python tools/train.py <config> --resume            # resume from latest
    python tools/train.py <config> --overwrite-work-dir  # replace a run
    python tools/train.py <config> --resume old.pth --trust-checkpoint
    torchrun --nproc_per_node 8 tools/train.py <config> --launcher pytorch

One run per work dir: the run holds it (an ``flock``) until it ends, and a
second run started there is refused with one line naming the holder. A work
dir that already holds checkpoints is refused unless ``--resume`` or
``--overwrite-work-dir`` is given; ``--resume`` skips a truncated newest
checkpoint with a warning (``ccop_plugin.engine.work_dir``).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ccop_plugin.engine.hooks import NonFiniteLossError
from ccop_plugin.engine.work_dir import (
    WorkDirError,
    lock_work_dir,
    plan_training_start,
)
from ccop_plugin.utils.checkpoint_safety import (
    CheckpointError,
    error_line,
    trust_checkpoints,
)
from ccop_plugin.utils.folder_lock import FolderInUseError


def parse_args() -> argparse.Namespace:
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
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    if args.trust_checkpoint:
        trust_checkpoints()
        print('--trust-checkpoint: a checkpoint that safe loading refuses is '
              'unpickled in full (it can run code): only for files you '
              'trust', file=sys.stderr)
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
    try:
        # held until the process ends: a second run here is refused
        lock = lock_work_dir(cfg.work_dir)  # noqa: F841
    except FolderInUseError as e:
        sys.exit(f'error: {e}')
    try:
        resume, load_from = plan_training_start(
            cfg.work_dir, args.resume, overwrite=args.overwrite_work_dir,
            warn=lambda msg: print(msg, file=sys.stderr))
    except WorkDirError as e:
        sys.exit(f'error: {e}')
    if resume:
        cfg.resume, cfg.load_from = True, load_from
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
              RUNNERS.build(cfg))
    try:
        runner.train()
    except CheckpointError as e:  # refused or unreadable: one line
        print(error_line(e), file=sys.stderr)
        sys.exit(1)
    except NonFiniteLossError as e:  # NaN / inf loss: one line
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
