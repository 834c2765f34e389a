"""CCOP pre-training against mmpretrain's MoCo v2, side by side.

Two measurements, both in one run on the same machine:

* **Training step**: images/s and peak memory of one optimisation step of
  CCOP and of mmpretrain's ``MoCo`` (v2 neck and head) with the same ResNet
  depth, batch and crop size. Both models live in one process and their
  steps are *interleaved* (A, B, B, A, A, B, ...), so load from other
  processes on a shared machine slows both alike; the table gives the median
  step time of each, their ratio, and the load average at start and end.
  On a GPU, a model's peak memory is its own tensors (parameters, buffers,
  optimiser state, queues) plus the largest rise of allocated memory during
  its steps. CCOP's forward is then broken down with ``torch.profiler`` over
  the ``record_function`` ranges its ``loss()`` marks: query encoder, FPN,
  key encoder (with its FPN), curriculum (jitter + candidate RoIs +
  selection) and the object branch (RoI neck + heads).
* **Data pipeline**: images/s of one worker (one process) of CCOP's box-aware
  two-view pipeline (``LoadProposals`` + ``BoxAwareMultiView`` +
  ``PackBoxSelfSupInputs``) against mmpretrain's MoCo v2 pipeline on the same
  generated JPEGs. ``--target-img-s`` turns the per-worker rate into the
  data-loader workers one GPU needs (ceil(target / per-worker rate)).

``tools/benchmark_pretrain.py`` is the command line (:func:`parse_args`,
:func:`run_pretrain_benchmark`). It prints a markdown table; ``--out
FILE`` also writes it (and JSON next to it);
``--record docs/benchmarks/performance.json`` stores the step figures in the
machine-readable record (section ``cpu``, or ``gpu.fp32`` / ``gpu.bf16``).
``--check-losses REF.json`` compares each model's first-step losses with
those of an earlier ``--out`` run of the same setting without the levers
(issue 24's numerics check: a lever must not change the step's result).

This module is the command line and the run; the measurements are
:mod:`.pretrain_timing` and the table and record :mod:`.pretrain_report`,
whose public names are re-exported here.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

from ..utils.fileio import atomic_write_json, atomic_write_text
from ..utils.performance_record import (
    read_performance_record,
    update_performance_record,
)
from .pretrain_report import (
    loss_check,
    loss_check_lines,
    record_values,
    run_config,
    to_markdown,
    workers_needed,
)
from .pretrain_timing import bench_models, bench_pipelines, count_step_flops

__all__ = [
    'LossCheckError', 'read_reference_losses', 'build_parser', 'parse_args',
    'run_pretrain_benchmark', 'bench_models', 'bench_pipelines',
    'count_step_flops', 'to_markdown', 'record_values', 'workers_needed',
    'command_line'
]


def build_parser() -> argparse.ArgumentParser:
    """``tools/benchmark_pretrain.py``'s options."""
    p = argparse.ArgumentParser(
        description='Benchmark CCOP pre-training against mmpretrain\'s '
        'MoCo v2, side by side.')
    p.add_argument('--device', default='cuda' if _has_cuda() else 'cpu')
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--size', type=int, default=224, help='crop size')
    p.add_argument('--boxes', type=int, default=None,
                   help='proposals per image kept in both views (default: '
                   'the mean the box-aware pipeline keeps, else 16)')
    p.add_argument('--iters', type=int, default=10,
                   help='timed steps of each model (interleaved)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--queue-len', type=int, default=65536)
    p.add_argument('--amp', action='store_true', help='bf16 autocast')
    p.add_argument('--channels-last', action='store_true',
                   help='both models and the views in channels-last memory '
                   'format (a lever of the GPU step; the table\'s setting '
                   'and the record name it)')
    p.add_argument('--compile', nargs='?', const='inductor', default=None,
                   metavar='BACKEND',
                   help='torch.compile every ResNet of both models (query '
                   'and key encoders, in place) with BACKEND (default '
                   'inductor); a lever of the GPU step')
    p.add_argument('--peak-tflops', type=float, default=None,
                   help='the device\'s dense peak at the step\'s precision '
                   '(TFLOP/s); with --count-flops each model\'s FLOP '
                   'utilisation (counted FLOPs / step time / peak) is '
                   'printed and recorded. Default: the datasheet peak of a '
                   'known GPU (pretrain_report.PEAK_TFLOPS), else none')
    p.add_argument('--science', action='store_true',
                   help='both models as the science protocol\'s configs '
                   'define them (cpu-science: ResNet-18 of base width 16, '
                   'FPN of 64 channels, queues of 256); --depth and '
                   '--queue-len are then ignored (use --size 64 --batch 32)')
    p.add_argument('--no-profile', action='store_true',
                   help="skip the profiler breakdown of CCOP's step")
    p.add_argument('--op-table', type=int, default=0, metavar='N',
                   help="also print the profiler's N operators with the "
                   "most self time in CCOP's step")
    p.add_argument('--count-flops', action='store_true',
                   help='also count the matmul / convolution FLOPs of one '
                   'step of each model (forward + backward, '
                   'torch.utils.flop_counter): the arithmetic floor of '
                   'their ratio, whatever the device')
    p.add_argument('--pipeline-images', type=int, default=48,
                   help='images for the data-pipeline benchmark (0 skips it)')
    p.add_argument('--target-img-s', type=float,
                   help='training rate one GPU reaches (images/s): prints '
                   'the data-loader workers it needs')
    p.add_argument('--skip-model', action='store_true')
    p.add_argument('--out', help='write the markdown table here')
    p.add_argument('--record', help='merge the step figures into this '
                   'performance record (docs/benchmarks/performance.json)')
    p.add_argument('--check-losses', metavar='REF_JSON',
                   help='compare both models\' first-step losses with those '
                   'of REF_JSON, the JSON an earlier --out run of the same '
                   'depth, batch, size, boxes and precision wrote (e.g. '
                   'without --channels-last / --compile)')
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options; contradictory ones end in argparse's usage error."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.record and (args.skip_model or args.iters < 1):
        p.error('--record needs the training-step benchmark (no '
                '--skip-model, --iters >= 1)')
    if args.record and args.science:
        p.error('--record holds the paper configs\' figures; --science '
                'prints its table only (--out)')
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        p.error(f'--peak-tflops must be > 0, got {args.peak_tflops}')
    if args.check_losses and (args.skip_model or args.iters < 1):
        p.error('--check-losses needs the training-step benchmark')
    if args.record and args.amp and args.device == 'cpu':
        p.error('--record: the cpu section holds fp32 figures; run without '
                '--amp')
    return args


def _has_cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


def command_line(argv: Optional[List[str]] = None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return 'python tools/benchmark_pretrain.py ' + ' '.join(args)


class LossCheckError(ValueError):
    """``--check-losses``' reference cannot be compared with this run."""


def read_reference_losses(path: str, config: dict) -> dict:
    """The first-step losses (model -> loss -> value) that an ``--out`` run
    wrote to ``path``, refused with one line naming the file when it is
    unreadable or of another :func:`.run_config` than ``config``."""
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
        ref = {m['name']: dict(m['first_losses']) for m in data['models']}
        theirs = data['config']
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LossCheckError(
            f'{path}: not the JSON of a --out run that kept its first-step '
            f'losses ({type(e).__name__}: {e})') from None
    if theirs != config:
        diff = sorted(k for k in set(config) | set(theirs)
                      if config.get(k) != theirs.get(k))
        raise LossCheckError(
            f'{path}: another setting than this run ('
            + ', '.join(f'{k} {theirs.get(k)} there, {config.get(k)} here'
                        for k in diff) + ')')
    return ref


def run_pretrain_benchmark(args: argparse.Namespace, cmd: str) -> int:
    """Measure, print the table, write ``--out`` and ``--record``.

    Args:
        args: :func:`parse_args`' options (``args.boxes`` is filled in when
            None).
        cmd (str): The command line, recorded with the figures.

    Returns:
        int: 0.

    Raises:
        PerformanceRecordError: ``--record`` is not a valid record; raised
            before measuring when it is broken already.
        LossCheckError: ``--check-losses``' file cannot be compared with
            this run (before measuring).
    """
    if args.record:  # refuse a broken record before minutes of measuring
        read_performance_record(args.record)
    load0 = os.getloadavg()
    pipes = bench_pipelines(args) if args.pipeline_images > 0 else []
    if args.boxes is None:
        kept = [p['mean_boxes'] for p in pipes if p['mean_boxes']]
        args.boxes = int(round(kept[0])) if kept else 16
    ref = (read_reference_losses(args.check_losses, run_config(args))
           if args.check_losses else None)  # before minutes of measuring
    models = [] if args.skip_model else bench_models(args)
    load = (load0[0], os.getloadavg()[0])
    md = to_markdown(args, models, pipes, load, cmd)
    check = None
    if ref is not None:
        check = loss_check(args, models, ref, args.check_losses)
        md += '\n' + '\n'.join(loss_check_lines(check)) + '\n'
    print(md)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        atomic_write_text(args.out, md)
        atomic_write_json(osp.splitext(args.out)[0] + '.json',
                          dict(models=models, pipelines=pipes,
                               load_average=load, config=run_config(args),
                               loss_check=check), end='')
    if args.record:
        section, values = record_values(args, models, load, cmd)
        update_performance_record(args.record, section, values)
        print(f'recorded {section} in {args.record}')
    return 0
