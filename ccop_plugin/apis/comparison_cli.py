"""Command line of ``tools/compare_pretraining.py``: CCOP vs MoCo v2 vs no
pre-training (and ablations), several seeds each (``run_comparison``);
:func:`main` returns the exit status.

The options are the main job's (:func:`.main_job_cli.build_parser`, without
a user's dataset) plus the comparison's own: ``--protocol``, ``--seeds``,
``--data-seeds``, ``--methods``, ``--record``, ``--no-probe`` and
``--supervised-control``.
"""
import argparse
import sys
from dataclasses import replace
from typing import List, NamedTuple, Optional, Sequence

from ..proposals.run_types import ProposalRunInterrupted
from ..utils.folder_lock import FolderInUseError
from .comparison import (
    DEFAULT_METHODS,
    METHODS,
    check_methods,
    comparison_seeds,
    run_comparison,
    run_keys,
)
from .job_config import MainJobConfig
from .main_job_cli import build_parser, config_from_args
from .methods import DEFAULT_PROTOCOL, PROTOCOLS, protocol_methods
from .science_record import read_science_record
from .tables import record_tables

__all__ = ['CompareArgs', 'parse_options', 'parse_args', 'main']

#: The tool's path as recorded in the record's ``protocol.command``.
TOOL = 'tools/compare_pretraining.py'
DESCRIPTION = ('CCOP vs MoCo v2 vs no pre-training (and ablations), several '
               'seeds each.')


class CompareArgs(NamedTuple):
    """The comparison's command line, parsed."""
    cfg: MainJobConfig
    methods: List[str]
    seeds: List[int]
    record: Optional[str]
    probe: bool
    command: str
    data_seeds: Optional[List[int]] = None
    supervised: bool = False
    supervised_steps: Optional[int] = None


def parse_options(argv: Optional[Sequence[str]] = None) -> CompareArgs:
    """The job config, methods, run seeds, record path, whether to probe,
    the command line recorded, the data seeds and whether to run the
    probe's positive control; a bad option exits with argparse's usage
    message."""
    p = build_parser(DESCRIPTION, user_data=False)
    p.set_defaults(num_test=40)
    p.add_argument('--protocol', choices=PROTOCOLS, default=DEFAULT_PROTOCOL,
                   help='cpu-science: the science protocol\'s configs '
                   '(width-16 ResNet-18, their own batch and schedule; '
                   'docs/science.md); cpu-tiny: the tiny configs at '
                   '--pretrain-iters / --pretrain-batch (history tables)')
    p.add_argument('--seeds', type=int, default=3,
                   help='runs per method (run seeds --seed .. --seed + N-1, '
                   'or from --first-run-seed)')
    p.add_argument('--first-run-seed', type=int, default=None, metavar='S',
                   help='run seeds S .. S + N-1 (default --seed): more run '
                   'seeds in their own record, to be joined to an earlier '
                   'one by tools/merge_science_records.py')
    p.add_argument('--data-seeds', type=int, default=None, metavar='N',
                   help='data seeds --seed .. --seed + N-1, each with its '
                   'own data and proposals, every run seed on each '
                   '(default: the one data seed --seed)')
    p.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS),
                   help=f'methods, or "all"; known: {", ".join(METHODS)}')
    p.add_argument('--record', default=None,
                   help='path of the machine-readable record (default '
                   '<work-dir>/science.json)')
    p.add_argument('--no-probe', dest='probe', action='store_false',
                   help='skip the linear-probe accuracy')
    p.add_argument('--supervised-control', dest='supervised',
                   action='store_true',
                   help='also the probe\'s positive control per run (the '
                   'protocol\'s ResNet trained with the train labels, '
                   'probed like every method)')
    p.add_argument('--supervised-steps', type=int, default=None,
                   metavar='N', help='training steps of that control '
                   '(default: its own)')
    args = p.parse_args(argv)
    if args.run_seed is not None:
        p.error('--run-seed is for run_demo.py; the comparison runs seeds '
                '--seed .. --seed + N-1 (--seeds N)')
    cfg = replace(config_from_args(args), protocol=args.protocol)
    if args.protocol != 'cpu-tiny':  # None: the protocol's configs' own
        cfg = replace(cfg, pretrain_iters=args.pretrain_iters,
                      pretrain_batch=args.pretrain_batch)
    command = ' '.join([TOOL] + list(sys.argv[1:] if argv is None
                                     else argv))
    methods = (list(protocol_methods(args.protocol))
               if args.methods == ['all'] else args.methods)
    data_seeds = None
    try:
        methods = check_methods(methods, args.protocol)
        seeds = comparison_seeds(cfg, args.seeds, args.first_run_seed)
        if args.data_seeds is not None:
            data_seeds = comparison_seeds(cfg, args.data_seeds)
    except ValueError as e:
        p.error(str(e).replace('--seeds ', '--seeds / --data-seeds '))
    return CompareArgs(cfg, methods, seeds, args.record, args.probe,
                       command, data_seeds, args.supervised,
                       args.supervised_steps)


def parse_args(argv: Optional[Sequence[str]] = None) -> tuple:
    """The first six fields of :func:`parse_options`: ``(cfg, methods,
    seeds, record, probe, command)``."""
    return tuple(parse_options(argv))[:6]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; 1 with one ``error:`` line for a record or work
    dir it must not touch, the interruption's code on SIGTERM (results
    kept, resumable), else 0."""
    a = parse_options(argv)
    probe = supervised = None
    if a.probe:
        from ..evaluation.linear_probe import linear_probe
        probe = linear_probe
    if a.supervised:
        from ..evaluation.supervised_control import supervised_probe
        supervised = supervised_probe
    from ..converters import ConversionError
    from ..engine.hooks import NonFiniteLossError
    try:
        run_comparison(a.cfg, a.methods, a.seeds, record=a.record,
                       probe=probe, command=a.command,
                       data_seeds=a.data_seeds, supervised=supervised,
                       supervised_steps=a.supervised_steps)
    except (FileExistsError, FolderInUseError, ConversionError,
            NonFiniteLossError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ProposalRunInterrupted as e:  # SIGTERM: results kept, resumable
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback
        from .stage import stopped_by_user
        return stopped_by_user('compare_pretraining.py')
    return 0


def tables_main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/science_tables.py``: print every table of a science record
    (:func:`~ccop_plugin.apis.tables.record_tables`); a missing or foreign
    file is a one-line error (exit 2)."""
    parser = argparse.ArgumentParser(
        description='Print the tables of a science record (make science, '
        'make science-ablations): summary, positive controls, paired '
        'differences, losses over chance.')
    parser.add_argument('record', help='a record of '
                        'tools/compare_pretraining.py (--record)')
    args = parser.parse_args(argv)
    try:
        record = read_science_record(args.record)
    except (OSError, ValueError) as e:
        print(f'science_tables: {e}', file=sys.stderr)
        return 2
    print(record_tables(record), end='')
    return 0


def merge_main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/merge_science_records.py``: join science records of one
    protocol (:func:`~ccop_plugin.apis.science_merge.merge_science_records`)
    into ``--record``, with its tables (``--table``) and plot
    (``--figure``); a bad part is a one-line error (exit 2)."""
    parser = argparse.ArgumentParser(
        description='Join science records of one protocol (e.g. more run '
        'seeds run later with compare_pretraining.py --first-run-seed) '
        'into one record, oldest first; a run two records both measured '
        'keeps the later one\'s values, both listed in protocol.reruns.')
    parser.add_argument('records', nargs='+', help='records of '
                        'tools/compare_pretraining.py (or of this tool)')
    parser.add_argument('--record', required=True,
                        help='the joined record (a path that is free or '
                        'holds a science record)')
    parser.add_argument('--table', default=None, help='also write its '
                        'tables (markdown) here')
    parser.add_argument('--figure', default=None, help='also plot it (PNG) '
                        'here')
    args = parser.parse_args(argv)
    from ..utils.fileio import atomic_write_text
    from .figures import plot_comparison
    from .science_merge import merge_science_records
    from .science_record import check_record_path, write_science_record
    from .tables import (
        comparison_table,
        difference_tables,
        reruns_table,
        supervised_line,
    )
    command = ' '.join(['tools/merge_science_records.py'] + list(
        sys.argv[1:] if argv is None else argv))
    try:
        check_record_path(args.record)
        protocol, values, sup, left_out = merge_science_records(
            args.records, command)
        write_science_record(args.record, protocol, values, supervised=sup)
    except (OSError, ValueError) as e:
        print(f'merge_science_records: {e}', file=sys.stderr)
        return 2
    keys = run_keys(protocol['seeds'], protocol.get('data_seeds'))
    if left_out:
        print(f'left out run seed(s) {left_out}: not every method has them '
              'on every data seed')
    if protocol['reruns']:
        print(f"{len(protocol['reruns'])} run(s) measured twice with other "
              "values: kept the later record's (protocol.reruns, table "
              'below)')
    table = comparison_table(values, keys,
                             protocol['evaluation'].get('split', 'test'))
    for extra in (*difference_tables(values, sup, protocol.get('data_seeds'),
                                     len(protocol['seeds'])),
                  supervised_line(sup), reruns_table(protocol['reruns'])):
        if extra:
            table += '\n' + extra
    if args.table:
        atomic_write_text(args.table, table)
    if args.figure:
        plot_comparison(values, args.figure, title=f'mean ± std over '
                        f'{len(keys)} run(s)')
    print(table, end='')
    print(f'record: {args.record} ({len(protocol["methods"])} methods, run '
          f'seeds {protocol["seeds"]})')
    return 0
