"""Command line of ``tools/compare_pretraining.py``: CCOP vs MoCo v2 vs no
pre-training (and ablations), several seeds each (``run_comparison``);
:func:`main` returns the exit status.

The options are the main job's (:func:`.main_job_cli.build_parser`, without
a user's dataset) plus the comparison's own: ``--seeds``, ``--methods``,
``--record`` and ``--no-probe``.
"""
import sys
from typing import List, Optional, Sequence, Tuple

from ..proposals.run_types import ProposalRunInterrupted
from ..utils.folder_lock import FolderInUseError
from .comparison import (
    DEFAULT_METHODS,
    METHODS,
    check_methods,
    comparison_seeds,
    run_comparison,
)
from .job_config import MainJobConfig
from .main_job_cli import build_parser, config_from_args

__all__ = ['parse_args', 'main']

#: The tool's path as recorded in the record's ``protocol.command``.
TOOL = 'tools/compare_pretraining.py'
DESCRIPTION = ('CCOP vs MoCo v2 vs no pre-training (and ablations), several '
               'seeds each.')


def parse_args(argv: Optional[Sequence[str]] = None
               ) -> Tuple[MainJobConfig, List[str], List[int],
                          Optional[str], bool, str]:
    """The job config, methods, run seeds, record path, whether to probe,
    and the command line recorded; a bad option exits with argparse's
    usage message."""
    p = build_parser(DESCRIPTION, user_data=False)
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
    command = ' '.join([TOOL] + list(sys.argv[1:] if argv is None
                                     else argv))
    methods = list(METHODS) if args.methods == ['all'] else args.methods
    try:
        methods = check_methods(methods)
        seeds = comparison_seeds(cfg, args.seeds)
    except ValueError as e:
        p.error(str(e))
    return cfg, methods, seeds, args.record, args.probe, command


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; 1 with one ``error:`` line for a record or work
    dir it must not touch, the interruption's code on SIGTERM (results
    kept, resumable), else 0."""
    cfg, methods, seeds, record, probe, command = parse_args(argv)
    if probe:
        from ..evaluation.linear_probe import linear_probe
        probe = linear_probe
    from ..engine.hooks import NonFiniteLossError
    try:
        run_comparison(cfg, methods, seeds, record=record,
                       probe=probe or None, command=command)
    except (FileExistsError, FolderInUseError,
            NonFiniteLossError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    return 0
