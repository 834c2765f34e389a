"""The main job's command line: the options, their config and ``main``.

``tools/run_demo.py`` is this module's :func:`main`; the comparison and the
budget sweep extend :func:`build_parser` with their own options.

Without data options the job runs on the embedded synthetic scenes (the
demo). With ``--train-ann`` it runs on a user's dataset::

    python tools/run_demo.py --work-dir work_dirs/mine \\
        --unlabeled photos/ more_photos/ \\
        --train-ann labels/train.json --train-images labels/images/ \\
        --val-ann labels/val.json --val-images labels/images/ \\
        --methods ccop none
"""
import argparse
import os
import sys
from typing import List, Optional

from .job_config import MainJobConfig, resolve_device

#: The pre-training batch picked on a GPU (``--pretrain-batch`` overrides).
GPU_PRETRAIN_BATCH = 64
USER_DATA = ('unlabeled', 'train_ann', 'train_images', 'val_ann',
             'val_images', 'test_ann', 'test_images')


def build_parser(description: Optional[str] = None,
                 user_data: bool = True) -> argparse.ArgumentParser:
    """The main job's options (the comparison and the sweep add theirs).

    ``user_data``: also the options of a user's dataset and of the job's
    own methods (the main job's CLI; the comparison has its own
    ``--methods``).
    """
    d = MainJobConfig()
    p = argparse.ArgumentParser(
        description=description or 'The main job: data -> proposals -> '
        'pre-training -> conversion -> fine-tuning -> report.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--work-dir', default=d.work_dir)
    p.add_argument('--seed', type=int, default=d.seed,
                   help='seed of the data and proposals (and of the '
                   'training runs unless --run-seed)')
    p.add_argument('--run-seed', type=int, default=d.run_seed,
                   help='seed of pre-training and fine-tuning (data order, '
                   'initialisation, augmentation); default: --seed')
    p.add_argument('--num-unlabeled', type=int, default=d.num_unlabeled)
    p.add_argument('--num-train', type=int, default=d.num_train)
    p.add_argument('--num-val', type=int, default=d.num_val)
    p.add_argument('--num-test', type=int, default=d.num_test,
                   help='images of a held-out test split for the final '
                   'figures (0: none, figures from val)')
    p.add_argument('--img-size', type=int, default=d.img_size)
    p.add_argument('--pretrain-iters', type=int, default=None,
                   help=f'pre-training iterations (default '
                   f'{d.pretrain_iters}; the comparison\'s cpu-science '
                   'protocol: its configs\' own)')
    p.add_argument('--pretrain-batch', type=int, default=None,
                   help=f'pre-training batch (default {d.pretrain_batch}; '
                   'on a GPU 64)')
    p.add_argument('--finetune-epochs', type=int, default=d.finetune_epochs)
    p.add_argument('--finetune-images', type=int, default=None, metavar='N',
                   help='fine-tune on the first N train images only '
                   '(default: all; the probe reads the whole split)')
    p.add_argument('--workers', type=int, default=d.workers,
                   help='selective-search workers (default: all cores)')
    p.add_argument('--no-fpn', dest='with_fpn', action='store_false',
                   help='transfer the backbone only')
    p.add_argument('--base-channels', type=int, default=d.base_channels,
                   metavar='C',
                   help='base width of the ResNet-18s (default: the '
                   'configs\' 64; 16: the narrow model of the tests, a '
                   'quick smoke run)')
    if user_data:
        _user_data_options(p)
    return p


def _user_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        'your own data (instead of the synthetic scenes)',
        'unlabeled image folders for pre-training and COCO-format labelled '
        'splits for fine-tuning; the label space comes from --train-ann')
    g.add_argument('--unlabeled', nargs='+', metavar='DIR',
                   help='folders of unlabeled images (searched '
                   'recursively; may hold the labelled images too)')
    for split, need in (('train', 'required'), ('val', 'required'),
                        ('test', 'optional')):
        g.add_argument(f'--{split}-ann', metavar='JSON',
                       help=f'COCO annotations of the {split} split '
                       f'({need})')
        g.add_argument(f'--{split}-images', metavar='DIR',
                       help=f'folder the {split} file names are relative to')
    g.add_argument('--img-scale', type=int, default=None, metavar='PX',
                   help='longer image side for training (default: the '
                   'median of the labelled train images, at most 512 on a '
                   'CPU and 1024 on a GPU)')
    g.add_argument('--methods', dest='job_methods', nargs='+', default=None,
                   metavar='METHOD',
                   help='pre-training methods, each fine-tuned and '
                   'evaluated (e.g. ccop mocov2 none); default: ccop, and '
                   'ccop none on your own data')
    g.add_argument('--finetune-batch', type=int, default=None,
                   help='fine-tuning batch (default 4; on a GPU 8)')
    g.add_argument('--device', choices=('auto', 'cpu', 'cuda'),
                   default='auto',
                   help='auto: cuda when torch sees a GPU')
    g.add_argument('--launcher', choices=('none', 'pytorch'),
                   default='none',
                   help='pytorch: several GPUs, started with torchrun '
                   '(README "Using it")')


def config_from_args(args: argparse.Namespace) -> MainJobConfig:
    """The :class:`MainJobConfig` of the options of :func:`build_parser`."""
    fields = MainJobConfig.__dataclass_fields__
    # the comparison's --methods are its own, not the main job's
    values = {k: v for k, v in vars(args).items()
              if k in fields and k != 'methods' and v is not None}
    if getattr(args, 'job_methods', None):
        values['methods'] = args.job_methods
    for k in ('unlabeled', 'methods'):
        if k in values:
            values[k] = tuple(values[k])
    if 'methods' in values:
        from .methods import METHODS
        unknown = [m for m in values['methods'] if m not in METHODS]
        if unknown:
            raise ValueError(f'unknown method(s) {", ".join(unknown)}; '
                             f'known: {", ".join(METHODS)}')
    base = values.get('base_channels')
    if base is not None and (base <= 0 or 64 % base):
        raise ValueError(f'--base-channels must divide 64, not {base}')
    ft = values.get('finetune_images')
    num_train = values.get('num_train', MainJobConfig.num_train)
    if ft is not None and (ft <= 0 or (not values.get('train_ann')
                                       and ft > num_train)):
        raise ValueError(f'--finetune-images must be between 1 and the '
                         f'train images ({num_train}), not {ft}')
    if ('pretrain_batch' not in values
            and resolve_device(values.get('device', 'auto')) == 'cuda'):
        values['pretrain_batch'] = GPU_PRETRAIN_BATCH
    return MainJobConfig(**values)


def _check_user_data(p: argparse.ArgumentParser,
                     args: argparse.Namespace) -> None:
    given = [k for k in USER_DATA if getattr(args, k, None)]
    if not given:
        return
    need = ['unlabeled', 'train_ann', 'train_images', 'val_ann',
            'val_images']
    missing = [k for k in need if not getattr(args, k)]
    if bool(args.test_ann) != bool(args.test_images):
        missing.append('test_images' if args.test_ann else 'test_ann')
    if missing:
        p.error('your own data needs ' + ', '.join(
            '--' + k.replace('_', '-') for k in missing))


def parse_args(argv: Optional[List[str]] = None) -> MainJobConfig:
    """The main job's settings from its command line."""
    p = build_parser()
    args = p.parse_args(argv)
    _check_user_data(p, args)
    try:
        return config_from_args(args)
    except ValueError as e:
        p.error(str(e))


def main(argv: Optional[List[str]] = None) -> int:
    """Run the main job; the exit status (1: refused input or work dir,
    143: stopped by SIGTERM, results kept and resumable)."""
    from ccop_plugin.engine.hooks import NonFiniteLossError
    from ccop_plugin.proposals.run_types import ProposalRunInterrupted
    from ccop_plugin.utils.folder_lock import FolderInUseError
    from .main_job import run_main_job
    from .user_data import UserDataError
    cfg = parse_args(argv)
    if cfg.device == 'cpu':  # before anything asks torch for a GPU
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    if cfg.launcher != 'none':  # under torchrun: one process per GPU
        from mmengine.dist import init_dist
        init_dist(cfg.launcher)  # gloo without a GPU (ccop_plugin's patch)
    try:
        run_main_job(cfg)
    except (FileExistsError, FolderInUseError, UserDataError,
            NonFiniteLossError) as e:  # a NaN / inf loss names its stage
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        from .stage import stopped_by_user
        return stopped_by_user('run_demo.py')
    return 0
