"""Command line of ``tools/sweep_budget.py``: the budget sweep
(``run_sweep``), a multi-seed comparison per grid point on the val split;
:func:`main` returns the exit status.

The options are the main job's (:func:`.main_job_cli.build_parser`, without
a user's dataset) plus the grid's: ``--iters``, ``--unlabeled``, ``--seeds``,
``--methods``, ``--record`` and ``--no-probe``.
"""
import argparse
import sys
from typing import Optional, Sequence, Tuple

from ..proposals.run_types import ProposalRunInterrupted
from ..utils.folder_lock import FolderInUseError
from .comparison import comparison_seeds
from .main_job_cli import build_parser, config_from_args
from .sweep import run_sweep

__all__ = ['parse_args', 'main']

DESCRIPTION = ('Budget sweep: the smallest budget at which pre-training '
               'methods separate.')


def parse_args(argv: Optional[Sequence[str]] = None
               ) -> Tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and its parsed options; ``--num-test`` is refused (the
    sweep never reads the test split)."""
    p = build_parser(DESCRIPTION, user_data=False)
    p.set_defaults(work_dir='work_dirs/sweep')
    p.add_argument('--iters', type=int, nargs='+', default=[100, 200, 400],
                   help='pre-training iterations of the grid (replaces '
                   '--pretrain-iters)')
    p.add_argument('--unlabeled', dest='grid_unlabeled', type=int,
                   nargs='+', default=[200],
                   help='unlabeled images of the grid (replaces '
                   '--num-unlabeled)')
    p.add_argument('--seeds', type=int, default=3)
    p.add_argument('--methods', nargs='+',
                   default=['ccop', 'mocov2', 'none'])
    p.add_argument('--record', default='work_dirs/sweep/sweep.json')
    p.add_argument('--no-probe', dest='probe', action='store_false')
    args = p.parse_args(argv)
    if args.num_test:
        p.error('the sweep reads the val split only; --num-test is for '
                'compare_pretraining.py')
    return p, args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the sweep; 1 with one ``error:`` line for bad settings or a
    record or work dir it must not touch, the interruption's code on
    SIGTERM (results kept, resumable), else 0."""
    _, args = parse_args(argv)
    cfg = config_from_args(args)
    probe = None
    if args.probe:
        from ..evaluation.linear_probe import linear_probe
        probe = linear_probe
    from ..engine.hooks import NonFiniteLossError
    try:
        seeds = comparison_seeds(cfg, args.seeds)
        run_sweep(cfg, args.iters, args.grid_unlabeled, args.methods, seeds,
                  args.record, probe=probe)
    except (ValueError, FileExistsError, FolderInUseError,
            NonFiniteLossError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        from .stage import stopped_by_user
        return stopped_by_user('sweep_budget.py')
    return 0
