"""The pre-training benchmark's markdown table and performance record.

:func:`to_markdown` turns :mod:`.pretrain_timing`'s measurements into the
table the tool prints (and ``--out`` writes); :func:`record_values` gives
the section of ``docs/benchmarks/performance.json`` they fill (``cpu``, or
``gpu.fp32`` / ``gpu.bf16``).
"""
import math
from typing import Dict, List, Optional

from ..utils.machine import machine_summary
from ..utils.performance_record import cpu_device_name, load_note
from .pretrain_timing import SECTIONS

__all__ = ['PEAK_TFLOPS', 'LOSS_RTOL', 'device_name', 'workers_needed',
           'peak_tflops', 'flop_utilisation', 'setting', 'run_config',
           'loss_check', 'loss_check_lines', 'to_markdown', 'record_values']

#: dense (no sparsity) peaks in TFLOP/s from NVIDIA's datasheets, as
#: (bf16, TF32): an fp32 step's convolutions run in TF32, PyTorch's default
#: for cuDNN. Matched in order against the device name (the first
#: substring found), so the PCIe / NVL cards come before their SXM names.
PEAK_TFLOPS = (
    ('H100 PCIe', 756.0, 378.0),
    ('H100 NVL', 835.5, 417.5),
    ('H200 NVL', 835.5, 417.5),
    ('H100', 989.5, 494.5),
    ('H200', 989.5, 494.5),
    ('A100', 312.0, 156.0),
)

#: ``--check-losses``: the largest relative difference of a first-step loss
#: from the reference run's that still counts as equal. A bf16 step rounds
#: to 8 mantissa bits; an fp32 step's TF32 convolutions change with the
#: kernel that a memory format or a compiler picks.
LOSS_RTOL = dict(bf16=2e-2, fp32=1e-3)


def device_name(device: str) -> str:
    """The machine a step ran on, as the record's ``device``."""
    import torch
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(torch.device(device))
    return f'{cpu_device_name()}, {torch.get_num_threads()} torch threads'


def workers_needed(target_img_s: float, worker_img_s: float) -> int:
    """Data-loader workers that feed ``target_img_s`` images/s."""
    return math.ceil(target_img_s / worker_img_s)


def peak_tflops(args, device: str) -> Optional[float]:
    """The peak FLOP utilisation is read against: ``--peak-tflops``, else
    :data:`PEAK_TFLOPS` of a known GPU named ``device`` at the step's
    precision, else None."""
    if getattr(args, 'peak_tflops', None):
        return float(args.peak_tflops)
    if not args.device.startswith('cuda'):
        return None
    for name, bf16, tf32 in PEAK_TFLOPS:
        if name in device:
            return bf16 if args.amp else tf32
    return None


def flop_utilisation(model: dict, peak: float) -> float:
    """Counted FLOPs per second of a model's median step over ``peak``
    (TFLOP/s): its model FLOP utilisation, a fraction."""
    return model['gflop'] * 1e9 / model['step_s'] / (peak * 1e12)


def setting(args) -> str:
    prec = ', bf16 autocast' if args.amp else ', fp32'
    if getattr(args, 'channels_last', False):
        prec += ', channels-last'
    if getattr(args, 'compile', None):
        prec += f', ResNets compiled ({args.compile})'
    if getattr(args, 'science', False):
        return ('the cpu-science configs (ResNet-18 of base width 16, '
                f'queues 256), batch {args.batch}, {args.size} px, '
                f'{args.boxes} boxes/image{prec}')
    return (f'ResNet-{args.depth}, batch {args.batch}, {args.size} px, '
            f'{args.boxes} boxes/image, queues {args.queue_len}{prec}')


def run_config(args) -> Dict:
    """What two runs must share for their first steps to be compared: the
    models, the batch, the device type and the precision (the levers,
    channels-last and compile, may differ)."""
    return dict(depth=None if args.science else args.depth,
                queue_len=None if args.science else args.queue_len,
                science=bool(args.science), batch=args.batch,
                size=args.size, boxes=args.boxes, amp=bool(args.amp),
                device=args.device.split(':')[0])


def loss_check(args, models: List[Dict], reference: Dict[str, Dict],
               ref_path: str) -> Dict:
    """Each model's largest relative difference of its first step's losses
    from ``reference``'s (model name -> loss name -> value, a run of the
    same :func:`run_config`), against :data:`LOSS_RTOL`. A loss that only
    one of the two runs has is listed under ``missing`` and fails the check
    (it never ends the run: the measurement is kept)."""
    tol = LOSS_RTOL['bf16' if args.amp else 'fp32']
    out = {}
    for r in models:
        mine, ref = r['first_losses'], reference.get(r['name'], {})
        diffs = {k: abs(mine[k] - ref[k]) / max(abs(ref[k]), 1e-12)
                 for k in sorted(set(mine) & set(ref))}
        worst = max(diffs, key=diffs.get) if diffs else None
        missing = sorted(set(mine) ^ set(ref))
        out[r['name']] = dict(
            max_rel_diff=diffs.get(worst), loss=worst, missing=missing,
            within=bool(diffs) and not missing and diffs[worst] <= tol)
    return dict(reference=ref_path, rtol=tol, models=out)


def loss_check_lines(check: Dict) -> List[str]:
    """The markdown of :func:`loss_check`."""
    def one(name, m):
        verdict = 'within' if m['within'] else 'OUTSIDE'
        if m['missing']:
            return (f"{name} losses not in both runs: "
                    f"{', '.join(m['missing'])} ({verdict})")
        return (f"{name} max relative difference {m['max_rel_diff']:.1e} "
                f"({m['loss']}, {verdict})")
    return [f"First-step losses against `{check['reference']}` (same "
            f"weights, batch and seed; relative tolerance "
            f"{check['rtol']:g}): "
            + ', '.join(one(n, m) for n, m in check['models'].items())
            + '.']


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
            peak = peak_tflops(args, device_name(args.device))
            if peak:
                lines += ['', f'FLOP utilisation (counted FLOPs / median '
                          f'step / {peak:g} TFLOP/s peak): ' + ', '.join(
                              f"{r['name']} "
                              f"{100 * flop_utilisation(r, peak):.1f}%"
                              for r in models) + '.']
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
        peak = peak_tflops(args, device_name(args.device))
        if peak:
            common.update(peak_tflops=peak,
                          mocov2_mfu=flop_utilisation(m, peak),
                          ccop_mfu=flop_utilisation(c, peak))
    if args.device.startswith('cuda'):
        prec = 'bf16' if args.amp else 'fp32'
        return 'gpu', {'device': device_name(args.device),
                       prec: dict(common,
                                  mocov2_peak_gib=m['peak_mem_gib'],
                                  ccop_peak_gib=c['peak_mem_gib'])}
    return 'cpu', dict(common, device=device_name(args.device),
                       mocov2_step_s=m['step_s'], ccop_step_s=c['step_s'])
