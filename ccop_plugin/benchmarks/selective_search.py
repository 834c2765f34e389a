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
:func:`run_selective_search_benchmark`).
"""
import argparse
import os
import os.path as osp
import platform
import shlex
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

from ..datagen import make_scene
from ..proposals import (
    RunOptions,
    ccop_filter,
    get_preset,
    list_image_dir,
    nms,
    prestart_workers,
    propose,
    random_scores,
    read_image,
    run_proposals,
)
from ..proposals.filters import sort_boxes
from ..proposals.proposal_file import read_proposal_file
from ..proposals.runner import worker_context
from ..utils.boxes import box_iou
from ..utils.fileio import atomic_write_text
from ..utils.machine import machine_summary
from ..utils.performance_record import (
    cpu_device_name,
    load_note,
    read_performance_record,
    update_performance_record,
)

__all__ = [
    'build_parser', 'parse_args', 'command_line',
    'run_selective_search_benchmark', 'python_greedy_nms', 'recall'
]


def python_greedy_nms(boxes, scores, thr):
    """Greedy NMS with a Python loop over boxes (reference-style baseline)."""
    boxes = boxes.copy()
    scores = scores.copy()
    idx = np.arange(len(boxes))
    keep = []
    while len(idx):
        j = int(np.argmax(scores))
        keep.append(int(idx[j]))
        b = boxes[j]
        lt = np.maximum(b[:2], boxes[:, :2])
        rb = np.minimum(b[2:], boxes[:, 2:])
        inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
        area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
        iou = inter / (area[j] + area - inter)
        alive = iou <= thr
        alive[j] = False
        boxes, scores, idx = boxes[alive], scores[alive], idx[alive]
    return np.asarray(keep)


def area(b):
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def recall(gt_list, pred_list, large_area, iou_thr):
    """Pooled recall of large ``gt`` boxes by ``pred`` boxes (per image)."""
    hit = tot = 0
    for gt, pred in zip(gt_list, pred_list):
        gt = gt[area(gt) > large_area]
        tot += len(gt)
        if len(gt) and len(pred):
            hit += int((box_iou(gt, pred).max(axis=1) >= iou_thr).sum())
    return hit / tot if tot else float('nan'), tot


def loop(paths, names, cfg):
    """Plain single-process loop; returns (seconds, per-image results)."""
    out = []
    t0 = time.perf_counter()
    for path, name in zip(paths, names):
        img = read_image(path)
        out.append(propose(img, cfg, name, return_candidates=True))
    return time.perf_counter() - t0, out


def time_tool(img_dir, entries, cfg, workers, tmp, tag):
    work = osp.join(tmp, f'{tag}.work')
    out = osp.join(tmp, f'{tag}.json')
    t0 = time.perf_counter()
    s = run_proposals(entries, img_dir, cfg, work, RunOptions(
        out=out, workers=workers, progress=False,
        log=lambda *a: None)).to_dict()
    total = time.perf_counter() - t0
    print(f'  tool {tag}: setup {s["setup_s"]:.2f} s, first result after '
          f'{s["first_result_s"]:.2f} s, work {s["work_s"]:.2f} s, merge+end '
          f'{total - s["setup_s"] - s["work_s"]:.2f} s, mean search '
          f'{s["search_s_per_image"]:.2f} s/img', flush=True)
    return total, out, s


def same_as_loop(json_path, entries, results):
    boxes = read_proposal_file(json_path).boxes
    for e, r in zip(entries, results):
        got = boxes.get(e.file_name, np.zeros((0, 4))).astype(np.float64)
        want = r['boxes'].copy()
        want[:, 2:] -= want[:, :2]
        if got.shape != want.shape or not np.allclose(got, want, atol=0.01):
            return False
    return True


def _two_core_run(args):
    """The tool's 2-worker run on exactly 2 cores (the 2-core figure)."""
    cores = len(os.sched_getaffinity(0))
    return cores == 2 and (args.workers or cores) == 2


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'


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
    if args.record and not _two_core_run(args) and not args.sweep_workers:
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
        bench = _Bench(args, cmd, tmp)
        _measure(bench)
        _report(bench)
        _sweep(bench)
        if args.record:
            _record(bench)
    return 0


class _Bench:
    """One run's state, filled in phase by phase: the images, the timed
    searches, the NMS comparison and the report."""

    def __init__(self, args: argparse.Namespace, cmd: str, tmp: str):
        self.args, self.cmd, self.tmp = args, cmd, tmp
        self.workers = args.workers or len(os.sched_getaffinity(0))
        self.rows = []
        self.sweep = {}

    def filtered(self, candidates):
        """Candidates that pass CCOP's geometric filters."""
        return candidates[ccop_filter(candidates, self.cfg_full)]


def _start_workers(workers: int) -> float:
    """Seconds of the one-time start of the workers' fork server (a fresh
    interpreter that imports the package); excluded from the rates."""
    t0 = time.perf_counter()
    prestart_workers()
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers, mp_context=worker_context()) as ex:
        list(ex.map(os.getpid, []))
        ex.submit(os.getpid).result()
    return time.perf_counter() - t0


def _prepare_images(b: _Bench) -> None:
    """``--image-dir``'s first images, or generated scenes with their drawn
    shapes as ``b.gt_boxes``."""
    args = b.args
    b.gt_boxes = None
    if args.image_dir:
        b.img_dir = args.image_dir
        b.entries = list_image_dir(b.img_dir)[:args.num_images]
        b.source = f'{len(b.entries)} images from `{b.img_dir}`'
        return
    import cv2
    w, h = (int(v) for v in args.size.lower().split('x'))
    b.img_dir = osp.join(b.tmp, 'imgs')
    os.makedirs(b.img_dir)
    b.gt_boxes = []
    for i in range(args.num_images):
        img, gt = make_scene(h, w, seed=args.seed * 1000 + i)
        cv2.imwrite(osp.join(b.img_dir, f'scene_{i:04d}.jpg'), img,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        b.gt_boxes.append(gt.astype(np.float64))
    b.entries = list_image_dir(b.img_dir)
    b.source = (f'{len(b.entries)} generated {w}x{h} textured scenes '
                f'(seed {args.seed}, {sum(len(g) for g in b.gt_boxes)} '
                'shapes)')


def _measure(b: _Bench) -> None:
    """Loop and tool at full resolution and at each scaled-down size, then
    the NMS step."""
    args = b.args
    b.t_start = _start_workers(b.workers)
    _prepare_images(b)
    b.paths = [osp.join(b.img_dir, e.file_name) for e in b.entries]
    b.names = [e.file_name for e in b.entries]
    b.load0 = os.getloadavg()
    if load_note(b.load0[0]):
        print(load_note(b.load0[0]), flush=True)
    print(f'{b.source}; {b.workers} workers; mode {args.mode}; worker fork '
          f'server start-up {b.t_start:.1f} s (once per run)', flush=True)
    b.cfg_full = get_preset('ccop', mode=args.mode)
    b.t_loop, b.res_full = loop(b.paths, b.names, b.cfg_full)
    print(f'full-res loop      {b.t_loop:.1f} s', flush=True)
    b.t_tool, out_json, s_full = time_tool(b.img_dir, b.entries, b.cfg_full,
                                           b.workers, b.tmp, 'full')
    identical = same_as_loop(out_json, b.entries, b.res_full)
    print(f'full-res tool      {b.t_tool:.1f} s  (same output: '
          f'{identical})', flush=True)
    b.rows.append(dict(setting='full resolution', loop=b.t_loop,
                       tool=b.t_tool, identical=identical, res=b.res_full,
                       worker_s=s_full['search_s_per_image']))
    variants = [(ms, True) for ms in args.max_sizes]
    if not args.no_unscaled_k:
        variants.insert(1, (args.max_sizes[0], False))
    for ms, scale_k in variants:
        cfg = b.cfg_full.replace(max_size=ms, scale_k=scale_k)
        tag = f's{ms}' + ('' if scale_k else 'k')
        t_l, res = loop(b.paths, b.names, cfg)
        t_t, out_s, s_t = time_tool(b.img_dir, b.entries, cfg, b.workers,
                                    b.tmp, tag)
        same = same_as_loop(out_s, b.entries, res)
        setting = f'--max-size {ms}' + ('' if scale_k else ' --scale-k 0')
        print(f'{setting:26s} loop {t_l:.1f} s, tool {t_t:.1f} s '
              f'(same output: {same})', flush=True)
        b.rows.append(dict(setting=setting, loop=t_l, tool=t_t,
                           identical=same, res=res, max_size=ms,
                           worker_s=s_t['search_s_per_image']))
    _time_nms(b)


def _time_nms(b: _Bench) -> None:
    """``torchvision.ops.nms`` against the Python greedy loop on the
    filtered full-resolution candidates."""
    b.t_tv = b.t_py = 0.0
    b.nms_agree = True
    for r, name in zip(b.res_full, b.names):
        c = sort_boxes(b.filtered(r['candidates']))
        s = random_scores(len(c), name, 0)
        t0 = time.perf_counter()
        k1 = nms(c, s, 0.5)
        b.t_tv += time.perf_counter() - t0
        t0 = time.perf_counter()
        k2 = python_greedy_nms(c, s.astype(np.float64), 0.5)
        b.t_py += time.perf_counter() - t0
        b.nms_agree &= np.array_equal(k1, k2)


def _table_row(b: _Bench, row: dict, full_cands, full_final) -> str:
    args, n = b.args, len(b.entries)
    res = row['res']
    cands = [b.filtered(r['candidates']) for r in res]
    final = [r['boxes'] for r in res]
    if 'max_size' in row:
        rc, n_rc = recall(full_cands, cands, args.large_area, args.iou)
        rf, n_rf = recall(full_final, final, args.large_area, args.iou)
        rc_s = f'{100 * rc:.1f}% (of {n_rc})'
        rf_s = f'{100 * rf:.1f}% (of {n_rf})'
    else:
        rc_s = rf_s = '100% (reference)'
    n_large = np.mean([(area(x) > args.large_area).sum() for x in final])
    if b.gt_boxes is not None:
        roc, n_ro = recall(b.gt_boxes, cands, args.large_area, args.iou)
        ro, n_ro = recall(b.gt_boxes, final, args.large_area, args.iou)
        ro_s = f'{100 * roc:.1f}% / {100 * ro:.1f}% (of {n_ro})'
    else:
        ro_s = 'n/a'
    return (f'| {row["setting"]} | {n / row["loop"]:.2f} img/s '
            f'({row["loop"] / n:.2f} s/img) | {n / row["tool"]:.2f} img/s '
            f'({row["worker_s"]:.2f}) | '
            f'**{row["loop"] / row["tool"]:.2f}x** | '
            f'{100 * n * row["worker_s"] / (b.workers * row["tool"]):.0f}% | '
            f'{b.t_loop / row["loop"]:.2f}x | '
            f'{np.mean([r["num_candidates"] for r in res]):.0f} | {rc_s} | '
            f'{rf_s} | {n_large:.1f} | {ro_s} |')


def _results_table(b: _Bench) -> str:
    full_cands = [b.filtered(r['candidates']) for r in b.res_full]
    full_final = [r['boxes'] for r in b.res_full]
    lines = [
        '| setting | plain loop (1 process) | tool, '
        f'{b.workers} workers (s/img inside a worker) | tool speed-up '
        'vs loop | parallel efficiency | speed-up vs '
        'full-res loop | candidates / img | candidate recall of '
        'large boxes | final recall of large boxes | large boxes / '
        'img in final | object recall (candidates / final) |',
        '|---|---|---|---|---|---|---|---|---|---|---|']
    lines += [_table_row(b, row, full_cands, full_final) for row in b.rows]
    return '\n'.join(lines)


def _report(b: _Bench) -> None:
    """Print the table, the NMS line and the identity check; write
    ``--out-md``."""
    args, n = b.args, len(b.entries)
    table = _results_table(b)
    load1 = os.getloadavg()
    n_filt = np.mean([len(b.filtered(r['candidates'])) for r in b.res_full])
    b.nms_line = (
        f'NMS step (filtered full-res candidates, {n_filt:.0f} boxes '
        f'per image on average): torchvision.ops.nms '
        f'{1000 * b.t_tv / n:.2f} ms/img, Python greedy loop '
        f'{1000 * b.t_py / n:.2f} ms/img '
        f'({b.t_py / max(b.t_tv, 1e-9):.0f}x); same kept boxes: '
        f'{b.nms_agree}')
    identical_all = all(r['identical'] for r in b.rows)
    env = (f'{cpu_name()}, {len(os.sched_getaffinity(0))} cores available; '
           f'load average {b.load0[0]:.2f} before, {load1[0]:.2f} after; '
           f'Python {platform.python_version()}')
    print(table)
    print(b.nms_line)
    print(f'tool output identical to the plain loop: {identical_all}')
    if args.out_md:
        b.md = '\n'.join(_markdown(b, table, env, identical_all))
        os.makedirs(osp.dirname(osp.abspath(args.out_md)), exist_ok=True)
        atomic_write_text(args.out_md, b.md)
        print(f'wrote {args.out_md}')


def _markdown(b: _Bench, table: str, env: str, identical_all: bool) -> list:
    """The lines of the ``--out-md`` report."""
    args = b.args
    note = load_note(b.load0[0])
    return [
        '# Selective-search proposals: benchmark', '',
        'Command:', '', '```', b.cmd, '```', '',
        f'Images: {b.source}. Selective search mode `{args.mode}`, CCOP '
        'filters (aspect in (1/3, 3), sqrt(wh) > 20 px, random-score NMS '
        'at IoU 0.5, top 50).', '',
        f'Machine: {env}.', '',
        *([note, ''] if note else []),
        table, '',
        '* *plain loop*: one process, `read_image` + `propose` per image '
        '(what the reference script does per worker).',
        '* *tool*: `run_proposals` (= `tools/selective_search.py`) from '
        'start to the final JSON: worker pool start, per-image JSON-lines '
        'writes and the merge included. Not included: the one-time start '
        'of the workers\' fork server (a fresh interpreter importing the '
        f'package, {b.t_start:.1f} s here), which the CLI overlaps with its '
        'own start-up. The tool\'s output is checked to be the same as '
        f'the loop\'s: **{identical_all}**.',
        '* *parallel efficiency*: time the workers spent searching '
        '(sum of per-image times) / (workers x tool wall time); what is '
        'missing is pool start, the tail of the last images and the '
        'merge. Concurrent searches also slow each other (compare s/img '
        'inside a worker with the loop\'s s/img).',
        '* *speed-up vs full-res loop*: plain-loop time at full '
        'resolution / plain-loop time of the row (single process).',
        '* *candidate recall of large boxes*: full-resolution candidates '
        'that pass the geometric filters and have area > '
        f'{args.large_area:g} px^2 (96^2), matched at IoU >= {args.iou} '
        'by a scaled-down candidate passing the same filters (boxes '
        'mapped back to full-resolution pixels); pooled over images. NMS '
        'and top-50 are excluded here because they keep a random subset.',
        '* *final recall of large boxes*: the same between the two final '
        'outputs (after NMS and top-50, both random subsets).',
        '* *large boxes / img in final*: final proposals per image with '
        f'area > {args.large_area:g} px^2 (of at most 50).',
        '* `--scale-k 0`: the graph-segmentation k is not scaled with the '
        'image (default: k is multiplied by the pixel ratio).',
        '* *object recall*: visible extent of the drawn shapes (area > '
        f'{args.large_area:g} px^2) covered by a filtered candidate / a '
        f'final proposal at IoU >= '
        f'{args.iou} (generated scenes only).', '',
        b.nms_line + '.', '',
    ]


def _sweep(b: _Bench) -> None:
    """``--sweep-workers``: the tool's full-resolution wall time per worker
    count, printed and appended to ``--out-md``."""
    args, n = b.args, len(b.entries)
    if not args.sweep_workers:
        return
    cores = len(os.sched_getaffinity(0))
    counts = sorted({w for w in args.sweep_workers if w <= cores})
    skipped = sorted({w for w in args.sweep_workers if w > cores})
    times = {}
    for w in counts:
        times[w], _, _ = time_tool(b.img_dir, b.entries, b.cfg_full, w,
                                   b.tmp, f'sweep{w}')
    b.sweep = {str(w): times[1] / times[w] for w in counts}
    sweep_md = ['', f'Worker sweep at full resolution ({n} images, '
                'tool wall time, speed-up over 1 worker'
                + (f'; skipped {skipped}: only {cores} cores' if skipped
                   else '') + '):', '',
                '| workers | ' + ' | '.join(map(str, counts)) + ' |',
                '|---|' + '---|' * len(counts),
                '| img/s | ' + ' | '.join(
                    f'{n / times[w]:.2f}' for w in counts) + ' |',
                '| speed-up | ' + ' | '.join(
                    f'{b.sweep[str(w)]:.2f}x' for w in counts) + ' |']
    print('\n'.join(sweep_md))
    if args.out_md:
        b.md += '\n'.join(sweep_md) + '\n'
        atomic_write_text(args.out_md, b.md)


def _record(b: _Bench) -> None:
    """Write the ``selective_search`` section of ``--record``."""
    args, n = b.args, len(b.entries)
    load2 = os.getloadavg()
    loads = [round(b.load0[0], 2), round(load2[0], 2)]
    values = dict(device=cpu_device_name(usable_cores=False))
    if _two_core_run(args):
        values.update(two_core_speedup_full_res=b.t_loop / b.t_tool,
                      sec_per_image_full_res=b.t_loop / n,
                      two_core_command=b.cmd, two_core_load_average=loads,
                      two_core_machine=machine_summary())
    if b.sweep:
        values.update(workers_speedup=b.sweep, sweep_command=b.cmd,
                      sweep_load_average=loads,
                      sweep_machine=machine_summary())
    update_performance_record(args.record, 'selective_search', values)
    print(f'recorded selective_search in {args.record}')
