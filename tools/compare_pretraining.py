"""CCOP vs MoCo v2 vs no pre-training (and ablations), several seeds each.

    python tools/compare_pretraining.py --seeds 3
    python tools/compare_pretraining.py --seeds 3 --methods all \
        --pretrain-iters 100 --num-test 100 \
        --record docs/benchmarks/science_100iters.json
    make science   # the README's 200-iteration table (see the Makefile)

Pre-trains each method on the synthetic unlabeled split with the same number
of iterations and batch, fine-tunes Mask R-CNN identically, evaluates it on a
held-out test split (--num-test) and measures the linear-probe accuracy; each
method runs once per seed (seeds --seed, --seed + 1, ...: data order,
initialisation, augmentation; the data is that of --seed for every run).
Writes ``<work-dir>/comparison.md`` (mean ± std), the report with a plot with
error bars, and the record (--record). Finished stages are reused, shared
with ``tools/run_demo.py`` when both use the same work dir and settings.
"""
import sys

from ccop_plugin.apis.comparison import (
    DEFAULT_METHODS,
    METHODS,
    check_methods,
    comparison_seeds,
    run_comparison,
)
from ccop_plugin.apis.main_job_cli import build_parser, config_from_args
from ccop_plugin.proposals.run_types import ProposalRunInterrupted
from ccop_plugin.utils.folder_lock import FolderInUseError


def parse_args(argv=None):
    p = build_parser(__doc__.split('\n\n')[0], user_data=False)
    p.set_defaults(num_test=40)
    p.add_argument('--seeds', type=int, default=3,
                   help='runs per method (run seeds --seed .. --seed + N-1)')
    p.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS),
                   help=f'methods, or "all"; known: {", ".join(METHODS)}')
    p.add_argument('--record', default=None,
                   help='path of the machine-readable record (default '
                   '<work-dir>/science.json)')
    p.add_argument('--no-probe', dest='probe', action='store_false',
                   help='skip the linear-probe accuracy')
    args = p.parse_args(argv)
    if args.run_seed is not None:
        p.error('--run-seed is for run_demo.py; the comparison runs seeds '
                '--seed .. --seed + N-1 (--seeds N)')
    cfg = config_from_args(args)
    # recorded in the record's protocol.command
    command = ' '.join(['tools/compare_pretraining.py'] +
                       list(sys.argv[1:] if argv is None else argv))
    methods = list(METHODS) if args.methods == ['all'] else args.methods
    try:
        methods = check_methods(methods)
        seeds = comparison_seeds(cfg, args.seeds)
    except ValueError as e:
        p.error(str(e))
    return cfg, methods, seeds, args.record, args.probe, command


def main(argv=None) -> int:
    cfg, methods, seeds, record, probe, command = parse_args(argv)
    if probe:
        from ccop_plugin.evaluation.linear_probe import linear_probe
        probe = linear_probe
    try:
        run_comparison(cfg, methods, seeds, record=record,
                       probe=probe or None, command=command)
    except (FileExistsError, FolderInUseError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    return 0


if __name__ == '__main__':
    sys.exit(main())
