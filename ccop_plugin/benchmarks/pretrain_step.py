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
"""
import argparse
import math
import os
import os.path as osp
import resource
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

from ..utils.fileio import atomic_write_json, atomic_write_text
from ..utils.machine import machine_summary
from ..utils.performance_record import (
    cpu_device_name,
    load_note,
    read_performance_record,
    update_performance_record,
)
from .pipelines import (
    benchmark_pipelines,
    ccop_config_path,
    config_pipelines,
    mocov2_config_path,
    with_cv2_crop,
    write_benchmark_images,
)

__all__ = [
    'build_parser', 'parse_args', 'run_pretrain_benchmark', 'bench_models',
    'bench_pipelines', 'count_step_flops', 'to_markdown', 'record_values',
    'workers_needed', 'command_line'
]

NAMES = ('mocov2', 'ccop')


SECTIONS = ('step:forward', 'ccop:encoder_q', 'ccop:fpn_q',
            'ccop:encoder_k', 'ccop:curriculum', 'ccop:object_branch',
            'step:backward+optimizer')


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
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The options; contradictory ones end in argparse's usage error."""
    p = build_parser()
    args = p.parse_args(argv)
    if args.record and (args.skip_model or args.iters < 1):
        p.error('--record needs the training-step benchmark (no '
                '--skip-model, --iters >= 1)')
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


# ----------------------------------------------------------------- model
def _model_cfg(name: str, args: argparse.Namespace):
    from mmengine.config import Config
    path = ccop_config_path() if name == 'ccop' else mocov2_config_path()
    cfg = Config.fromfile(path).model
    c5 = 512 if args.depth < 50 else 2048
    cfg.backbone.depth = args.depth
    cfg.backbone.init_cfg = None
    cfg.queue_len = args.queue_len
    if name == 'ccop':
        cfg.roi_queue_len = args.queue_len
        cfg.img_neck.in_channels = c5
        if args.depth < 50:
            cfg.neck.in_channels = [64, 128, 256, 512]
        scale = args.size / 224
        cfg.roi_neck.assign_sizes = tuple(
            int(round(s * scale)) for s in cfg.roi_neck.assign_sizes)
    else:
        cfg.neck.in_channels = c5
    return cfg


def _fake_batch(args: argparse.Namespace, device):
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    views = [torch.randn(args.batch, 3, args.size, args.size, generator=g)
             .to(device) for _ in range(2)]
    samples = []
    for _ in range(args.batch):
        xy = torch.rand(2, args.boxes, 2, generator=g) * args.size * 0.6
        wh = (0.15 + torch.rand(2, args.boxes, 2, generator=g) * 0.25
              ) * args.size
        boxes = torch.cat([xy, (xy + wh).clamp(max=args.size)], dim=-1)
        ds = DataSample()
        ds.set_field(boxes, 'view_bboxes')
        samples.append(ds)
    return views, samples


def _own_bytes(model, optim) -> int:
    """Bytes of a model's parameters, buffers and optimiser state."""
    import torch
    n = sum(t.numel() * t.element_size()
            for t in list(model.parameters()) + list(model.buffers()))
    for state in optim.optimizer.state.values():
        n += sum(v.numel() * v.element_size() for v in state.values()
                 if isinstance(v, torch.Tensor))
    return n


def bench_models(args: argparse.Namespace) -> List[Dict]:
    """Both models in this process, their steps interleaved."""
    import torch
    from mmengine.optim import OptimWrapper
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    register_all_modules()  # the package's import registered CCOP
    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    runs = {}
    for name in NAMES:
        torch.manual_seed(0)
        model = MODELS.build(_model_cfg(name, args)).to(device)
        model.train()
        optim = OptimWrapper(torch.optim.SGD(
            model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4))
        runs[name] = (model, optim)
    views, samples = _fake_batch(args, device)

    from torch.profiler import record_function

    def step(name):
        model, optim = runs[name]
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.amp), record_function('step:forward'):
            losses = model.loss(views, samples)
        with record_function('step:backward+optimizer'):
            optim.update_params(sum(losses.values()))
        return {k: float(v.detach()) for k, v in losses.items()}

    def forward(name):  # no backward, no update: FLOP counting only
        with torch.no_grad(), torch.autocast(
                device.type, dtype=torch.bfloat16, enabled=args.amp):
            runs[name][0].loss(views, samples)

    for _ in range(args.warmup):
        for name in NAMES:
            step(name)
    sync()
    times = {n: [] for n in NAMES}
    rise = dict.fromkeys(NAMES, 0)
    losses = {}
    for it in range(args.iters):
        # A, B, B, A, ...: neither model always runs first
        for name in (NAMES if it % 2 == 0 else NAMES[::-1]):
            if cuda:
                before = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            losses[name] = step(name)
            sync()
            times[name].append(time.perf_counter() - t0)
            if cuda:
                rise[name] = max(rise[name],
                                 torch.cuda.max_memory_allocated() - before)
    results = []
    for name in NAMES:
        step_s = statistics.median(times[name])
        out = dict(name=name, step_s=step_s, img_per_s=args.batch / step_s,
                   step_min_s=min(times[name]), step_max_s=max(times[name]),
                   losses=losses[name])
        if cuda:
            out['peak_mem_gib'] = (_own_bytes(*runs[name]) +
                                   rise[name]) / 2**30
        results.append(out)
    if not cuda:  # one process: the peak RSS is the two models' together
        results[-1]['peak_rss_gib_both'] = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 2**20
    if not args.no_profile:
        results[-1]['breakdown_s'], results[-1]['op_table'] = _profile_ccop(
            step, device, sync, args.op_table)
    if args.count_flops:
        for r in results:
            r['gflop'], r['gflop_parts'] = count_step_flops(
                step, forward, r['name'])
    return results


def count_step_flops(step, forward, name: str) -> tuple:
    """GFLOP of one step of model ``name`` (matmul, convolution and
    attention ops, forward and backward; torch's FLOP counter), and of one
    forward pass per class of the top-level modules it calls (the query and
    the momentum copy of a module together, e.g. ``ResNet`` = query and key
    backbone; MoCo v2 calls its key encoder as one
    ``ExponentialMovingAverage``; ops outside any module, e.g. the queue
    logits, are ``(outside modules)``). Parts are forward-only because the
    counter cannot attribute the backward of a module whose input needs no
    gradient (the backbone's) to that module."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        step(name)
    total = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc:
        forward(name)
    fwd = fc.get_total_flops()
    parts, inside = {}, 0
    for mod, ops in fc.get_flop_counts().items():
        if mod != 'Global' and '.' not in mod:
            flops = sum(ops.values())
            parts[mod] = flops / 1e9
            inside += flops
    if fwd > inside:
        parts['(outside modules)'] = (fwd - inside) / 1e9
    return total / 1e9, parts


def _profile_ccop(step, device, sync, op_table=0):
    """Seconds per step of the ranges CCOP's ``loss()`` marks."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU]
    if device.type == 'cuda':
        acts.append(ProfilerActivity.CUDA)
    with profile(activities=acts) as prof:
        for _ in range(2):
            step('ccop')
        sync()
    breakdown = {}
    for ev in prof.key_averages():
        if ev.key in SECTIONS:
            t = (getattr(ev, 'device_time_total', 0) or
                 getattr(ev, 'cuda_time_total', 0)
                 ) if device.type == 'cuda' else ev.cpu_time_total
            breakdown[ev.key] = t / 2 / 1e6  # seconds per step
    table = ''
    if op_table:
        key = ('self_device_time_total' if device.type == 'cuda' else
               'self_cpu_time_total')
        table = prof.key_averages().table(sort_by=key, row_limit=op_table,
                                          max_name_column_width=50)
    return breakdown, table


# ----------------------------------------------------------------- data
def bench_pipelines(args: argparse.Namespace) -> List[Dict]:
    """One data-loader worker's images/s: MoCo v2's and CCOP's pipelines."""
    from mmengine.registry import DefaultScope

    configs = config_pipelines()
    pipes = dict(
        mocov2=configs['mocov2'],
        # the same pipeline cropping with OpenCV as the box-aware one does:
        # separates the cost of handling boxes from the crop backend's
        mocov2_cv2crop=with_cv2_crop(configs['mocov2']),
        ccop=configs['ccop'])
    with tempfile.TemporaryDirectory() as tmp, \
            DefaultScope.overwrite_default_scope('mmpretrain'):
        # 50 proposals per image, as the reference's selective search keeps
        ann = write_benchmark_images(tmp, args.pipeline_images,
                                     boxes_per_image=50)
        res = benchmark_pipelines(pipes, data_root=tmp, ann_file=ann,
                                  repeats=2)
    return [dict(name=r['name'], img_per_s=r['img_per_s'],
                 mean_boxes=r.get('boxes_per_img')) for r in res]


def device_name(device: str) -> str:
    """The machine a step ran on, as the record's ``device``."""
    import torch
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    return f'{cpu_device_name()}, {torch.get_num_threads()} torch threads'


def workers_needed(target_img_s: float, worker_img_s: float) -> int:
    """Data-loader workers that feed ``target_img_s`` images/s."""
    return math.ceil(target_img_s / worker_img_s)


def command_line(argv: Optional[List[str]] = None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return 'python tools/benchmark_pretrain.py ' + ' '.join(args)


def setting(args) -> str:
    return (f'ResNet-{args.depth}, batch {args.batch}, {args.size} px, '
            f'{args.boxes} boxes/image, queues {args.queue_len}'
            f'{", bf16 autocast" if args.amp else ", fp32"}')


def to_markdown(args, models, pipes, load, cmd) -> str:
    lines = [f'Command: `{cmd}`', '']
    if models:
        m, c = models
        lines += [f'Training step on {device_name(args.device)}: '
                  f'{setting(args)}. Steps interleaved ({args.iters} timed '
                  f'of each after {args.warmup} warm-up); load average '
                  f'{load[0]:.2f} at start, {load[1]:.2f} at end.', '',
                  *([load_note(load[0]), ''] if load_note(load[0]) else []),
                  '| model | median step (s) | min-max (s) | images/s | '
                  'peak memory (GiB) | relative step cost |',
                  '| --- | --- | --- | --- | --- | --- |']
        for r in models:
            mem = (f"{r['peak_mem_gib']:.2f}" if 'peak_mem_gib' in r else
                   '-')
            lines.append(f"| {r['name']} | {r['step_s']:.3f} | "
                         f"{r['step_min_s']:.3f}-{r['step_max_s']:.3f} | "
                         f"{r['img_per_s']:.1f} | {mem} | "
                         f"{r['step_s'] / m['step_s']:.2f}x |")
        if 'peak_rss_gib_both' in c:
            lines += ['', f"Peak RSS of the process (both models): "
                      f"{c['peak_rss_gib_both']:.2f} GiB."]
        if 'gflop' in c:
            lines += ['', 'Arithmetic of one step (matmul / convolution / '
                      'attention FLOPs, forward + backward, '
                      '`torch.utils.flop_counter`; device-independent):', '',
                      '| model | GFLOP / step | GFLOP / image | relative |',
                      '| --- | --- | --- | --- |']
            for r in models:
                lines.append(f"| {r['name']} | {r['gflop']:.1f} | "
                             f"{r['gflop'] / args.batch:.2f} | "
                             f"{r['gflop'] / m['gflop']:.2f}x |")
            lines += ['', 'CCOP forward pass by module class, query and key '
                      'copies together (GFLOP): ' + ', '.join(
                f'{k} {v:.1f}' for k, v in sorted(
                    c['gflop_parts'].items(), key=lambda kv: -kv[1])) + '.']
        if c.get('breakdown_s'):
            lines += ['', 'CCOP step broken down (profiler, 2 steps, per '
                      'step; forward parts indented):', '',
                      '| part | time (s) | share of the profiled step |',
                      '| --- | --- | --- |']
            b = c['breakdown_s']
            total = (b.get('step:forward', 0) +
                     b.get('step:backward+optimizer', 0)) or c['step_s']
            for k in SECTIONS:
                if k in b:
                    t = b[k]
                    part = (k if k.startswith('step:') else
                            '&nbsp;&nbsp;' + k.split(':')[1])
                    lines.append(f"| {part} | {t:.4f} | "
                                 f"{100 * t / total:.1f}% |")
        if c.get('op_table'):
            lines += ['', 'Operators with the most self time in 2 CCOP '
                      'steps (profiler):', '', '```', c['op_table'].rstrip(),
                      '```']
    if pipes:
        lines += ['', 'Data pipeline, one worker (one process, 1 thread), '
                  '640x480 JPEGs, 50 proposals/image:', '',
                  '| pipeline | images/s | boxes kept / image | relative |',
                  '| --- | --- | --- | --- |']
        base = pipes[0]['img_per_s']
        for p in pipes:
            nb = '-' if p['mean_boxes'] is None else f"{p['mean_boxes']:.1f}"
            lines.append(f"| {p['name']} | {p['img_per_s']:.1f} | {nb} | "
                         f"{p['img_per_s'] / base:.2f}x |")
        ccop = [p for p in pipes if p['name'] == 'ccop']
        if ccop and args.target_img_s:
            rate = ccop[0]['img_per_s']
            lines += ['', f'Data-loader workers for {args.target_img_s:g} '
                      f'images/s: ceil({args.target_img_s:g} / {rate:.1f}) = '
                      f'{workers_needed(args.target_img_s, rate)} (CCOP '
                      'pipeline, one worker measured here).']
    return '\n'.join(lines) + '\n'


def record_values(args, models, load, cmd) -> tuple:
    """(section, values) of the performance record for this run."""
    m, c = models
    common = dict(mocov2_img_s=m['img_per_s'], ccop_img_s=c['img_per_s'],
                  ccop_over_mocov2=c['step_s'] / m['step_s'],
                  setting=setting(args), command=cmd,
                  load_average=[round(load[0], 2), round(load[1], 2)],
                  machine=machine_summary())
    if 'gflop' in c:
        common.update(mocov2_gflop_per_img=m['gflop'] / args.batch,
                      ccop_gflop_per_img=c['gflop'] / args.batch,
                      ccop_over_mocov2_flops=c['gflop'] / m['gflop'])
    if args.device.startswith('cuda'):
        prec = 'bf16' if args.amp else 'fp32'
        return 'gpu', {'device': device_name(args.device),
                       prec: dict(common,
                                  mocov2_peak_gib=m['peak_mem_gib'],
                                  ccop_peak_gib=c['peak_mem_gib'])}
    return 'cpu', dict(common, device=device_name(args.device),
                       mocov2_step_s=m['step_s'], ccop_step_s=c['step_s'])


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
    """
    if args.record:  # refuse a broken record before minutes of measuring
        read_performance_record(args.record)
    load0 = os.getloadavg()
    pipes = bench_pipelines(args) if args.pipeline_images > 0 else []
    if args.boxes is None:
        kept = [p['mean_boxes'] for p in pipes if p['mean_boxes']]
        args.boxes = int(round(kept[0])) if kept else 16
    models = [] if args.skip_model else bench_models(args)
    load = (load0[0], os.getloadavg()[0])
    md = to_markdown(args, models, pipes, load, cmd)
    print(md)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        atomic_write_text(args.out, md)
        atomic_write_json(osp.splitext(args.out)[0] + '.json',
                          dict(models=models, pipelines=pipes,
                               load_average=load), end='')
    if args.record:
        section, values = record_values(args, models, load, cmd)
        update_performance_record(args.record, section, values)
        print(f'recorded {section} in {args.record}')
    return 0
