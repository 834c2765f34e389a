"""Benchmark CCOP pre-training against mmpretrain's MoCo v2, side by side.

Two measurements, both in one run on the same machine:

* **Training step**: images/s and peak memory of one optimisation step of
  CCOP and of mmpretrain's ``MoCo`` (v2 neck and head) with the same ResNet
  depth, batch and crop size, each in its own subprocess (clean peak memory).
  CCOP's forward is broken down with ``torch.profiler`` over the
  ``record_function`` ranges its ``loss()`` marks: query encoder, FPN, key
  encoder (with its FPN), curriculum (jitter + candidate RoIs + selection) and
  the object branch (RoI neck + heads).
* **Data pipeline**: images/s of one worker (one process) of CCOP's box-aware
  two-view pipeline (``LoadProposals`` + ``BoxAwareMultiView`` +
  ``PackBoxSelfSupInputs``) against mmpretrain's MoCo v2 pipeline on the same
  generated JPEGs.

Example (paper setting on a GPU; a CPU run should use a small depth/batch)::

    python tools/benchmark_pretrain.py --device cuda --depth 50 --batch 32
    python tools/benchmark_pretrain.py --device cpu --depth 18 --batch 8 \
        --size 128

Prints a markdown table; ``--out FILE`` also writes it (and JSON next to it).
"""
import argparse
import copy
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CCOP_CFG = osp.join(ROOT, 'configs/ccop',
                    'ccop_resnet50-fpn_8xb32-coslr-800e_coco.py')
MOCO_CFG = 'mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'  # in mmpretrain


def _moco_cfg_path() -> str:
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                    MOCO_CFG)
SECTIONS = ('ccop:encoder_q', 'ccop:fpn_q', 'ccop:encoder_k',
            'ccop:curriculum', 'ccop:object_branch')


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cuda' if _has_cuda() else 'cpu')
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--size', type=int, default=224, help='crop size')
    p.add_argument('--boxes', type=int, default=None,
                   help='proposals per image kept in both views (default: '
                   'the mean the box-aware pipeline keeps, else 16)')
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--queue-len', type=int, default=65536)
    p.add_argument('--amp', action='store_true', help='bf16 autocast (GPU)')
    p.add_argument('--pipeline-images', type=int, default=48,
                   help='images for the data-pipeline benchmark (0 skips it)')
    p.add_argument('--skip-model', action='store_true')
    p.add_argument('--out', help='write the markdown table here')
    p.add_argument('--_worker', choices=['ccop', 'mocov2'],
                   help=argparse.SUPPRESS)
    return p.parse_args()


def _has_cuda() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:  # pragma: no cover
        return False


# ----------------------------------------------------------------- model
def _model_cfg(name: str, args: argparse.Namespace):
    from mmengine.config import Config
    path = CCOP_CFG if name == 'ccop' else _moco_cfg_path()
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


def run_worker(args: argparse.Namespace) -> Dict:
    import torch
    from mmengine.optim import OptimWrapper
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import register_all_modules

    import ccop_plugin  # noqa: F401
    register_all_modules()
    device = torch.device(args.device)
    model = MODELS.build(_model_cfg(args._worker, args)).to(device)
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.03,
                                         momentum=0.9, weight_decay=1e-4))
    views, samples = _fake_batch(args, device)
    sync = (torch.cuda.synchronize if device.type == 'cuda' else
            (lambda: None))

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16,
                            enabled=args.amp):
            losses = model.loss(views, samples)
        loss = sum(losses.values())
        optim.update_params(loss)
        return losses

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.iters):
        losses = step()
    sync()
    step_time = (time.perf_counter() - t0) / args.iters
    out = dict(
        name=args._worker,
        step_s=step_time,
        img_per_s=args.batch / step_time,
        losses={k: float(v) for k, v in losses.items()})
    if device.type == 'cuda':
        out['peak_mem_gib'] = torch.cuda.max_memory_allocated() / 2**30
    else:
        out['peak_rss_gib'] = resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 2**20

    if args._worker == 'ccop':
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU]
        if device.type == 'cuda':
            acts.append(ProfilerActivity.CUDA)
        with profile(activities=acts) as prof:
            for _ in range(2):
                step()
            sync()
        breakdown = {}
        for ev in prof.key_averages():
            if ev.key in SECTIONS:
                t = (getattr(ev, 'device_time_total', 0) or
                     getattr(ev, 'cuda_time_total', 0)
                     ) if device.type == 'cuda' else ev.cpu_time_total
                breakdown[ev.key] = t / 2 / 1e6  # seconds per step
        out['breakdown_s'] = breakdown
    return out


def bench_models(args: argparse.Namespace) -> List[Dict]:
    results = []
    for name in ('mocov2', 'ccop'):
        cmd = [sys.executable, __file__, '--_worker', name,
               '--device', args.device, '--depth', str(args.depth),
               '--batch', str(args.batch), '--size', str(args.size),
               '--boxes', str(args.boxes), '--iters', str(args.iters),
               '--warmup', str(args.warmup),
               '--queue-len', str(args.queue_len)] + (
                   ['--amp'] if args.amp else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f'{name} benchmark failed:\n{proc.stderr[-3000:]}')
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


# ----------------------------------------------------------------- data
def _with_cv2_crop(pipeline: list) -> list:
    """A copy of ``pipeline`` whose RandomResizedCrop uses OpenCV."""
    def visit(node):
        if isinstance(node, dict):
            node = {k: visit(v) for k, v in node.items()}
            if node.get('type') == 'RandomResizedCrop':
                node['backend'] = 'cv2'
            return node
        if isinstance(node, (list, tuple)):
            return [visit(v) for v in node]
        return node
    return visit(copy.deepcopy(list(pipeline)))


def bench_pipelines(args: argparse.Namespace) -> List[Dict]:
    """One data-loader worker's images/s: MoCo v2's and CCOP's pipelines."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from ccop_plugin.datasets.benchmark import (
        benchmark_pipelines,
        write_benchmark_images,
    )
    moco = Config.fromfile(_moco_cfg_path()).train_dataloader.dataset.pipeline
    pipes = dict(
        mocov2=moco,
        # the same pipeline cropping with OpenCV as the box-aware one does:
        # separates the cost of handling boxes from the crop backend's
        mocov2_cv2crop=_with_cv2_crop(moco),
        ccop=Config.fromfile(CCOP_CFG).train_dataloader.dataset.pipeline)
    with tempfile.TemporaryDirectory() as tmp, \
            DefaultScope.overwrite_default_scope('mmpretrain'):
        # 50 proposals per image, as the reference's selective search keeps
        ann = write_benchmark_images(tmp, args.pipeline_images,
                                     boxes_per_image=50)
        res = benchmark_pipelines(pipes, data_root=tmp, ann_file=ann,
                                  repeats=2)
    return [dict(name=r['name'], img_per_s=r['img_per_s'],
                 mean_boxes=r.get('boxes_per_img')) for r in res]


def to_markdown(args, models, pipes) -> str:
    lines = [f'Command: `python tools/benchmark_pretrain.py '
             f'{" ".join(a for a in sys.argv[1:])}`', '']
    if models:
        import torch
        dev = (torch.cuda.get_device_name(0) if args.device == 'cuda' else
               f'CPU ({os.cpu_count()} cores, '
               f'{torch.get_num_threads()} threads)')
        lines += [f'Training step on {dev}: ResNet-{args.depth}, batch '
                  f'{args.batch}, {args.size} px, {args.boxes} boxes/image, '
                  f'queues {args.queue_len}{", bf16" if args.amp else ""}.',
                  '', '| model | step (s) | images/s | peak memory (GiB) | '
                  'relative step cost |', '| --- | --- | --- | --- | --- |']
        base = models[0]['step_s']
        for m in models:
            mem = m.get('peak_mem_gib', m.get('peak_rss_gib'))
            lines.append(f"| {m['name']} | {m['step_s']:.3f} | "
                         f"{m['img_per_s']:.1f} | {mem:.2f}"
                         f"{'' if 'peak_mem_gib' in m else ' (RSS)'} | "
                         f"{m['step_s'] / base:.2f}x |")
        ccop = models[-1]
        if ccop.get('breakdown_s'):
            lines += ['', 'CCOP forward broken down (profiler, per step):', '',
                      '| part | time (s) | share of the step |',
                      '| --- | --- | --- |']
            for k in SECTIONS:
                if k in ccop['breakdown_s']:
                    t = ccop['breakdown_s'][k]
                    lines.append(f"| {k.split(':')[1]} | {t:.4f} | "
                                 f"{100 * t / ccop['step_s']:.1f}% |")
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
    return '\n'.join(lines) + '\n'


def main() -> None:
    args = parse_args()
    if args._worker:
        print(json.dumps(run_worker(args)))
        return
    pipes = bench_pipelines(args) if args.pipeline_images > 0 else []
    if args.boxes is None:
        kept = [p['mean_boxes'] for p in pipes if p['mean_boxes']]
        args.boxes = int(round(kept[0])) if kept else 16
    models = [] if args.skip_model else bench_models(args)
    md = to_markdown(args, models, pipes)
    print(md)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(md)
        with open(osp.splitext(args.out)[0] + '.json', 'w') as f:
            json.dump(dict(models=models, pipelines=pipes), f, indent=1)


if __name__ == '__main__':
    main()
