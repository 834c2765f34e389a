"""Benchmark CCOP pre-training against mmpretrain's MoCo v2, side by side.

Training step (images/s, peak memory; both models' steps interleaved in
one process, CCOP's forward broken down by the profiler) and data pipeline
(one worker's images/s of CCOP's box-aware pipeline and MoCo v2's); see
:mod:`ccop_plugin.benchmarks.pretrain_step`.

Example (paper setting on a GPU; a CPU run should use a small depth/batch)::

    python tools/benchmark_pretrain.py --device cuda --depth 50 --batch 32
    python tools/benchmark_pretrain.py --device cpu --depth 18 --batch 8 \
        --size 128

Prints a markdown table; ``--out FILE`` also writes it (and JSON next to it);
``--record docs/benchmarks/performance.json`` stores the step figures in the
machine-readable record (section ``cpu``, or ``gpu.fp32`` / ``gpu.bf16``).
"""
import sys

from ccop_plugin.benchmarks.pretrain_step import (
    LossCheckError,
    command_line,
    parse_args,
    run_pretrain_benchmark,
)
from ccop_plugin.utils.performance_record import PerformanceRecordError


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run_pretrain_benchmark(args, command_line(argv))
    except (PerformanceRecordError, LossCheckError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
