#!/usr/bin/env python
"""Benchmark the selective-search tool.

Parallel speed-up of ``tools/selective_search.py`` over a plain loop,
speed and recall of scaled-down searches, and the NMS step, on generated
scenes or ``--image-dir`` (:mod:`ccop_plugin.benchmarks.selective_search`
explains every column)::

    python tools/benchmark_selective_search.py --num-images 12 \\
        --out-md docs/benchmarks/selective_search.md
"""
import sys

from ccop_plugin.benchmarks.selective_search import (
    command_line,
    parse_args,
    run_selective_search_benchmark,
)
from ccop_plugin.utils.performance_record import PerformanceRecordError


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_selective_search_benchmark(args,
                                              command_line(__file__, argv))
    except PerformanceRecordError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
