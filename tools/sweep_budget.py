"""Budget sweep: the smallest budget at which pre-training methods separate.

    python tools/sweep_budget.py --iters 100 200 400 --unlabeled 200 \
        --seeds 3 --record docs/benchmarks/science_sweep.json

Every grid point (unlabeled images x pre-training iterations) is a
multi-seed comparison of --methods (default: ccop mocov2 none) on the val
split; the test split of the final comparison is never read. Writes
``<work-dir>/sweep.md`` and the record after each point; rerunning reuses
every finished stage.
"""
import sys

from ccop_plugin.apis.comparison import comparison_seeds
from ccop_plugin.apis.main_job_cli import build_parser, config_from_args
from ccop_plugin.apis.sweep import run_sweep
from ccop_plugin.proposals.run_types import ProposalRunInterrupted
from ccop_plugin.utils.folder_lock import FolderInUseError


def parse_args(argv=None):
    p = build_parser(__doc__.split('\n\n')[0], user_data=False)
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


def main(argv=None) -> int:
    p, args = parse_args(argv)
    cfg = config_from_args(args)
    probe = None
    if args.probe:
        from ccop_plugin.evaluation.linear_probe import linear_probe
        probe = linear_probe
    try:
        seeds = comparison_seeds(cfg, args.seeds)
        run_sweep(cfg, args.iters, args.grid_unlabeled, args.methods, seeds,
                  args.record, probe=probe)
    except (ValueError, FileExistsError, FolderInUseError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    return 0


if __name__ == '__main__':
    sys.exit(main())
