#!/usr/bin/env python
"""Proposal quality on the embedded labelled split: recall and AR at k.

    python tools/benchmark_proposal_recall.py --img-sizes 128 512 \\
        --out-md docs/benchmarks/proposal_recall.md \\
        --out-json docs/benchmarks/proposal_recall.json

Selective search (presets ccop and soco, full resolution and --max-size 320)
and heat-map proposals on the demo's val split, measured with mmdet's
matching (:mod:`ccop_plugin.benchmarks.proposal_recall`). The Markdown and
JSON records are kept unless --overwrite.
"""
import sys

from ccop_plugin.benchmarks.proposal_recall import (
    RecallBenchmarkError,
    command_line,
    parse_args,
    run_recall_benchmark,
)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_recall_benchmark(args, command_line(argv))
    except RecallBenchmarkError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
