"""The main job: synthetic data -> proposals -> CCOP -> Mask R-CNN -> report.

    python tools/run_demo.py                      # work_dirs/demo/report.md
    python tools/run_demo.py --work-dir work_dirs/demo2 --pretrain-iters 400

Each stage records its result; rerunning the command reuses finished stages
(an interrupted pre-training resumes from its last checkpoint).
"""
import argparse
import sys

from ccop_plugin.apis.main_job import MainJobConfig, run_main_job
from ccop_plugin.proposals.run_types import ProposalRunInterrupted
from ccop_plugin.utils.folder_lock import FolderInUseError


def build_parser(description: str = None) -> argparse.ArgumentParser:
    """The main job's options (shared with ``compare_pretraining.py``)."""
    d = MainJobConfig()
    p = argparse.ArgumentParser(
        description=description or __doc__.split('\n\n')[0],
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
    p.add_argument('--pretrain-iters', type=int, default=d.pretrain_iters)
    p.add_argument('--pretrain-batch', type=int, default=d.pretrain_batch)
    p.add_argument('--finetune-epochs', type=int, default=d.finetune_epochs)
    p.add_argument('--workers', type=int, default=d.workers,
                   help='selective-search workers (default: all cores)')
    p.add_argument('--no-fpn', dest='with_fpn', action='store_false',
                   help='transfer the backbone only')
    return p


def config_from_args(args: argparse.Namespace) -> MainJobConfig:
    """The :class:`MainJobConfig` of the options of :func:`build_parser`."""
    fields = MainJobConfig.__dataclass_fields__
    return MainJobConfig(**{k: v for k, v in vars(args).items()
                            if k in fields})


def parse_args(argv=None) -> MainJobConfig:
    return config_from_args(build_parser().parse_args(argv))


def main(argv=None) -> int:
    try:
        run_main_job(parse_args(argv))
    except (FileExistsError, FolderInUseError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    return 0


if __name__ == '__main__':
    sys.exit(main())
