"""Benchmark of the selective-search tool (``tools/selective_search.py``).

Measures, on the same images in one run:

1. **Parallel speed-up** -- images/s of ``run_proposals`` with all workers
   (pool start-up, JSON-lines writing and the final merge included) against a
   plain single-process loop (``read_image`` + :func:`propose` per image, as
   the reference script does). The two outputs are checked to be identical.
2. **Scaled-down search** -- the same loop with images shrunk to a longer
   side of ``--max-sizes`` before the search: speed-up over full resolution
   and *recall of large boxes*:

   * candidate recall: of the full-resolution candidates that pass the CCOP
     geometric filters (aspect in (1/3, 3), sqrt(wh) > 20) and have area >
     ``--large-area`` (default 96^2 px), the fraction matched at IoU >= 0.5 by
     some scaled-down candidate passing the same filters (boxes mapped back
     to full-resolution pixels). NMS and top-50 are left out because they
     keep a random subset.
   * final recall: the same, between the two final outputs (after NMS and
     top-50), so it includes the random subsampling of both runs.
   * object recall (generated scenes only): fraction of the drawn shapes
     (visible extent) with area > ``--large-area`` that a filtered candidate
     / a final proposal covers at IoU >= 0.5.
3. **NMS step** -- ``torchvision.ops.nms`` against a pure-Python greedy loop
   in the style of the reference, on the filtered full-resolution candidates.

Images are the package's synthetic scenes (``--size``, default 640x480,
several shapes; :func:`ccop_plugin.datagen.make_scene`) unless
``--image-dir`` is given. Writes a markdown report. The command line is
``tools/benchmark_selective_search.py`` (:func:`parse_args`,
:func:`run_selective_search_benchmark`); the images and timed runs are
:mod:`.selective_search_runs`, the tables, report and record
:mod:`.selective_search_report`.
"""
import argparse
import os
import os.path as osp
import shlex
import sys
import tempfile
from typing import Optional, Sequence

from ..utils.performance_record import read_performance_record
from .selective_search_report import record, report, sweep
from .selective_search_runs import (
    Bench,
    measure,
    python_greedy_nms,
    recall,
    two_core_run,
)

__all__ = [
    'build_parser', 'parse_args', 'command_line',
    'run_selective_search_benchmark', 'python_greedy_nms', 'recall'
]


def build_parser() -> argparse.ArgumentParser:
    """``tools/benchmark_selective_search.py``'s options."""
    p = argparse.ArgumentParser(description='Benchmark the selective-search '
                                'tool.')
    p.add_argument('--image-dir', help='benchmark on these images (first '
                   '--num-images, sorted) instead of generated scenes')
    p.add_argument('--num-images', type=int, default=12)
    p.add_argument('--size', default='640x480', help='WxH of generated '
                   'scenes')
    p.add_argument('--workers', type=int, help='tool workers (default: all '
                   'cores available)')
    p.add_argument('--max-sizes', type=int, nargs='+', default=[320, 400],
                   help='longer sides of the scaled-down searches')
    p.add_argument('--no-unscaled-k', action='store_true',
                   help='skip the row of the first max size with --scale-k 0')
    p.add_argument('--mode', default='fast',
                   choices=['fast', 'quality', 'single'])
    p.add_argument('--large-area', type=float, default=96.0 ** 2)
    p.add_argument('--iou', type=float, default=0.5)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-md', help='write the report (markdown) here')
    p.add_argument('--sweep-workers', type=int, nargs='+', metavar='N',
                   help='also time the tool at full resolution with each of '
                   'these worker counts (1 included; counts above the cores '
                   'available are skipped): speed-up over one worker')
    p.add_argument('--record', help='write the selective_search section of '
                   'this performance record (docs/benchmarks/'
                   'performance.json): the 2-core speed-up when pinned to '
                   '2 cores with 2 workers, the sweep when given')
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options; ``--record`` with nothing to record ends in argparse's
    usage error."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.sweep_workers and 1 not in args.sweep_workers:
        args.sweep_workers = [1] + args.sweep_workers
    if args.record and not two_core_run(args) and not args.sweep_workers:
        p.error('--record: nothing to record; the 2-core speed-up needs '
                'this process pinned to 2 cores (taskset -c 0,1) and 2 '
                'workers, or give --sweep-workers')
    return args


def command_line(tool_path: str,
                 argv: Optional[Sequence[str]] = None) -> str:
    """``python <tool relative to the working dir> <arguments>``, quoted
    for a shell (recorded with the figures)."""
    return 'python ' + ' '.join(
        shlex.quote(a) for a in [osp.relpath(tool_path, os.getcwd())]
        + list(argv if argv is not None else sys.argv[1:]))


def run_selective_search_benchmark(args: argparse.Namespace,
                                   cmd: str) -> int:
    """Measure, print the tables, write ``--out-md`` and ``--record``.

    Args:
        args: :func:`parse_args`' options.
        cmd (str): The command line (:func:`command_line`), in the report
            and the record.

    Returns:
        int: 0.

    Raises:
        PerformanceRecordError: ``--record`` is not a valid record; raised
            before measuring when it is broken already.
    """
    if args.record:  # refuse a broken record before minutes of measuring
        read_performance_record(args.record)
    with tempfile.TemporaryDirectory(prefix='ss_bench_') as tmp:
        bench = Bench(args, cmd, tmp)
        measure(bench)
        report(bench)
        sweep(bench)
        if args.record:
            record(bench)
    return 0
