"""CCOP's and MoCo v2's training steps, timed side by side.

Both models are built from the packaged configs at the requested depth,
batch and crop size and live in one process; their steps are interleaved
(A, B, B, A, ...) so that load from other processes slows both alike.
:func:`count_step_flops` counts one step's arithmetic, ``_profile_ccop``
breaks CCOP's step into the ranges its ``loss()`` marks, and
:func:`bench_pipelines` measures one data-loader worker of each pipeline.
The command line is :mod:`.pretrain_step`; the table and the record are
:mod:`.pretrain_report`.
"""
import argparse
import resource
import statistics
import tempfile
import time
from typing import Dict, List

from .pipelines import (
    benchmark_pipelines,
    ccop_config_path,
    config_pipelines,
    mocov2_config_path,
    with_cv2_crop,
    write_benchmark_images,
)

__all__ = ['NAMES', 'SECTIONS', 'bench_models', 'count_step_flops',
           'bench_pipelines']

NAMES = ('mocov2', 'ccop')


SECTIONS = ('step:forward', 'ccop:encoder_q', 'ccop:fpn_q',
            'ccop:encoder_k', 'ccop:curriculum', 'ccop:object_branch',
            'step:backward+optimizer')


# ----------------------------------------------------------------- model
def _model_cfg(name: str, args: argparse.Namespace):
    from mmengine.config import Config
    if getattr(args, 'science', False):  # the configs as they are
        from ..apis.methods import SCIENCE_PRETRAIN_CONFIGS
        from ..utils.config_path import get_config_path
        cfg = Config.fromfile(get_config_path(
            SCIENCE_PRETRAIN_CONFIGS[name])).model
        cfg.backbone.init_cfg = None
        return cfg
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


def _compile_resnets(model, backend: str) -> None:
    """``torch.compile`` every ResNet of ``model`` in place (query and key
    encoders; names and parameters unchanged, so the EMA still pairs
    them)."""
    from mmpretrain.models.backbones import ResNet
    for net in [m for m in model.modules() if isinstance(m, ResNet)]:
        net.compile(backend=backend)


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
        if getattr(args, 'channels_last', False):
            model.to(memory_format=torch.channels_last)
        if getattr(args, 'compile', None):
            _compile_resnets(model, args.compile)
        model.train()
        optim = OptimWrapper(torch.optim.SGD(
            model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4))
        runs[name] = (model, optim)
    views, samples = _fake_batch(args, device)
    if getattr(args, 'channels_last', False):
        views = [v.contiguous(memory_format=torch.channels_last)
                 for v in views]

    from torch.profiler import record_function

    first = {}  # each model's first step: same weights, batch and seed

    def step(name):
        model, optim = runs[name]
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.amp), record_function('step:forward'):
            losses = model.loss(views, samples)
        with record_function('step:backward+optimizer'):
            optim.update_params(sum(losses.values()))
        out = {k: float(v.detach()) for k, v in losses.items()}
        first.setdefault(name, out)  # the levers' numerics check reads it
        return out

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
                   losses=losses[name], first_losses=first[name])
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
