#!/usr/bin/env python
"""Benchmark the selective-search tool.

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
``--image-dir`` is given. Writes a markdown report.

    python tools/benchmark_selective_search.py --num-images 12 \\
        --out-md docs/benchmarks/selective_search.md
"""
import argparse
import os
import os.path as osp
import platform
import shlex
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from ccop_plugin.datagen import make_scene  # noqa: E402
from ccop_plugin.proposals import (  # noqa: E402
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
from ccop_plugin.proposals.filters import sort_boxes  # noqa: E402
from ccop_plugin.proposals.proposal_file import (  # noqa: E402
    read_proposal_file,
)
from ccop_plugin.proposals.runner import worker_context  # noqa: E402
from ccop_plugin.utils.boxes import box_iou  # noqa: E402


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


def tool(img_dir, entries, cfg, workers, tmp, tag):
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
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
    args = p.parse_args(argv)
    if args.sweep_workers and 1 not in args.sweep_workers:
        args.sweep_workers = [1] + args.sweep_workers
    if args.record:
        from ccop_plugin.utils.performance_record import (
            PerformanceRecordError,
            read_performance_record,
        )
        if not _two_core_run(args) and not args.sweep_workers:
            p.error('--record: nothing to record; the 2-core speed-up needs '
                    'this process pinned to 2 cores (taskset -c 0,1) and 2 '
                    'workers, or give --sweep-workers')
        try:  # refuse a broken record before minutes of measuring
            read_performance_record(args.record)
        except PerformanceRecordError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1

    workers = args.workers or len(os.sched_getaffinity(0))
    # One-time start of the workers' fork server (a fresh interpreter that
    # imports the package); measured separately, excluded from the rates.
    t0 = time.perf_counter()
    prestart_workers()
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(workers, mp_context=worker_context()) as ex:
        list(ex.map(os.getpid, []))
        ex.submit(os.getpid).result()
    t_start = time.perf_counter() - t0
    tmp_obj = tempfile.TemporaryDirectory(prefix='ss_bench_')
    tmp = tmp_obj.name
    gt_boxes = None
    if args.image_dir:
        img_dir = args.image_dir
        entries = list_image_dir(img_dir)[:args.num_images]
        source = f'{len(entries)} images from `{img_dir}`'
    else:
        import cv2
        w, h = (int(v) for v in args.size.lower().split('x'))
        img_dir = osp.join(tmp, 'imgs')
        os.makedirs(img_dir)
        gt_boxes = []
        for i in range(args.num_images):
            img, gt = make_scene(h, w, seed=args.seed * 1000 + i)
            cv2.imwrite(osp.join(img_dir, f'scene_{i:04d}.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            gt_boxes.append(gt.astype(np.float64))
        entries = list_image_dir(img_dir)
        source = (f'{len(entries)} generated {w}x{h} textured scenes '
                  f'(seed {args.seed}, {sum(len(g) for g in gt_boxes)} '
                  'shapes)')
    paths = [osp.join(img_dir, e.file_name) for e in entries]
    names = [e.file_name for e in entries]
    n = len(entries)
    load0 = os.getloadavg()
    from ccop_plugin.utils.performance_record import load_note
    if load_note(load0[0]):
        print(load_note(load0[0]), flush=True)
    print(f'{source}; {workers} workers; mode {args.mode}; worker fork '
          f'server start-up {t_start:.1f} s (once per run)', flush=True)

    cfg_full = get_preset('ccop', mode=args.mode)
    rows = []
    t_loop, res_full = loop(paths, names, cfg_full)
    print(f'full-res loop      {t_loop:.1f} s', flush=True)
    t_tool, out_json, s_full = tool(img_dir, entries, cfg_full, workers, tmp,
                                    'full')
    identical = same_as_loop(out_json, entries, res_full)
    print(f'full-res tool      {t_tool:.1f} s  (same output: {identical})',
          flush=True)
    rows.append(dict(setting='full resolution', loop=t_loop, tool=t_tool,
                     identical=identical, res=res_full,
                     worker_s=s_full['search_s_per_image']))

    def filtered(c):
        return c[ccop_filter(c, cfg_full)]

    full_cands = [filtered(r['candidates']) for r in res_full]
    full_final = [r['boxes'] for r in res_full]
    variants = [(ms, True) for ms in args.max_sizes]
    if not args.no_unscaled_k:
        variants.insert(1, (args.max_sizes[0], False))
    for ms, scale_k in variants:
        cfg = cfg_full.replace(max_size=ms, scale_k=scale_k)
        tag = f's{ms}' + ('' if scale_k else 'k')
        t_l, res = loop(paths, names, cfg)
        t_t, out_s, s_t = tool(img_dir, entries, cfg, workers, tmp, tag)
        same = same_as_loop(out_s, entries, res)
        setting = f'--max-size {ms}' + ('' if scale_k else ' --scale-k 0')
        print(f'{setting:26s} loop {t_l:.1f} s, tool {t_t:.1f} s '
              f'(same output: {same})', flush=True)
        rows.append(dict(setting=setting, loop=t_l, tool=t_t,
                         identical=same, res=res, max_size=ms,
                         worker_s=s_t['search_s_per_image']))

    # NMS step on filtered full-resolution candidates
    t_tv = t_py = 0.0
    agree = True
    for r, name in zip(res_full, names):
        c = sort_boxes(filtered(r['candidates']))
        s = random_scores(len(c), name, 0)
        t0 = time.perf_counter()
        k1 = nms(c, s, 0.5)
        t_tv += time.perf_counter() - t0
        t0 = time.perf_counter()
        k2 = python_greedy_nms(c, s.astype(np.float64), 0.5)
        t_py += time.perf_counter() - t0
        agree &= np.array_equal(k1, k2)
    n_filt = np.mean([len(c) for c in full_cands])

    # tables
    lines = []
    lines.append('| setting | plain loop (1 process) | tool, '
                 f'{workers} workers (s/img inside a worker) | tool speed-up '
                 'vs loop | parallel efficiency | speed-up vs '
                 'full-res loop | candidates / img | candidate recall of '
                 'large boxes | final recall of large boxes | large boxes / '
                 'img in final | object recall (candidates / final) |')
    lines.append('|---|---|---|---|---|---|---|---|---|---|---|')
    for row in rows:
        res = row['res']
        cands = [filtered(r['candidates']) for r in res]
        final = [r['boxes'] for r in res]
        if 'max_size' in row:
            rc, n_rc = recall(full_cands, cands, args.large_area, args.iou)
            rf, n_rf = recall(full_final, final, args.large_area, args.iou)
            rc_s = f'{100 * rc:.1f}% (of {n_rc})'
            rf_s = f'{100 * rf:.1f}% (of {n_rf})'
        else:
            rc_s = rf_s = '100% (reference)'
        n_large = np.mean([(area(b) > args.large_area).sum() for b in final])
        if gt_boxes is not None:
            roc, n_ro = recall(gt_boxes, cands, args.large_area, args.iou)
            ro, n_ro = recall(gt_boxes, final, args.large_area, args.iou)
            ro_s = f'{100 * roc:.1f}% / {100 * ro:.1f}% (of {n_ro})'
        else:
            ro_s = 'n/a'
        lines.append(
            f'| {row["setting"]} | {n / row["loop"]:.2f} img/s '
            f'({row["loop"] / n:.2f} s/img) | {n / row["tool"]:.2f} img/s '
            f'({row["worker_s"]:.2f}) | '
            f'**{row["loop"] / row["tool"]:.2f}x** | '
            f'{100 * n * row["worker_s"] / (workers * row["tool"]):.0f}% | '
            f'{t_loop / row["loop"]:.2f}x | '
            f'{np.mean([r["num_candidates"] for r in res]):.0f} | {rc_s} | '
            f'{rf_s} | {n_large:.1f} | {ro_s} |')
    table = '\n'.join(lines)
    load1 = os.getloadavg()
    nms_line = (f'NMS step (filtered full-res candidates, {n_filt:.0f} boxes '
                f'per image on average): torchvision.ops.nms '
                f'{1000 * t_tv / n:.2f} ms/img, Python greedy loop '
                f'{1000 * t_py / n:.2f} ms/img '
                f'({t_py / max(t_tv, 1e-9):.0f}x); same kept boxes: {agree}')
    identical_all = all(r['identical'] for r in rows)
    cmd = 'python ' + ' '.join(
        shlex.quote(a) for a in [osp.relpath(__file__, os.getcwd())]
        + (argv if argv is not None else sys.argv[1:]))
    env = (f'{cpu_name()}, {len(os.sched_getaffinity(0))} cores available; '
           f'load average {load0[0]:.2f} before, {load1[0]:.2f} after; '
           f'Python {platform.python_version()}')
    print(table)
    print(nms_line)
    print(f'tool output identical to the plain loop: {identical_all}')
    if args.out_md:
        md = [
            '# Selective-search proposals: benchmark', '',
            'Command:', '', '```', cmd, '```', '',
            f'Images: {source}. Selective search mode `{args.mode}`, CCOP '
            'filters (aspect in (1/3, 3), sqrt(wh) > 20 px, random-score NMS '
            'at IoU 0.5, top 50).', '',
            f'Machine: {env}.', '',
            *([load_note(load0[0]), ''] if load_note(load0[0]) else []),
            table, '',
            '* *plain loop*: one process, `read_image` + `propose` per image '
            '(what the reference script does per worker).',
            '* *tool*: `run_proposals` (= `tools/selective_search.py`) from '
            'start to the final JSON: worker pool start, per-image JSON-lines '
            'writes and the merge included. Not included: the one-time start '
            'of the workers\' fork server (a fresh interpreter importing the '
            f'package, {t_start:.1f} s here), which the CLI overlaps with its '
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
            nms_line + '.', '',
        ]
        os.makedirs(osp.dirname(osp.abspath(args.out_md)), exist_ok=True)
        with open(args.out_md, 'w') as f:
            f.write('\n'.join(md))
        print(f'wrote {args.out_md}')
    sweep = {}
    if args.sweep_workers:
        cores = len(os.sched_getaffinity(0))
        counts = sorted({w for w in args.sweep_workers if w <= cores})
        skipped = sorted({w for w in args.sweep_workers if w > cores})
        times = {}
        for w in counts:
            times[w], _, _ = tool(img_dir, entries, cfg_full, w, tmp,
                                  f'sweep{w}')
        sweep = {str(w): times[1] / times[w] for w in counts}
        sweep_md = ['', f'Worker sweep at full resolution ({n} images, '
                    'tool wall time, speed-up over 1 worker'
                    + (f'; skipped {skipped}: only {cores} cores' if skipped
                       else '') + '):', '',
                    '| workers | ' + ' | '.join(map(str, counts)) + ' |',
                    '|---|' + '---|' * len(counts),
                    '| img/s | ' + ' | '.join(
                        f'{n / times[w]:.2f}' for w in counts) + ' |',
                    '| speed-up | ' + ' | '.join(
                        f'{sweep[str(w)]:.2f}x' for w in counts) + ' |']
        print('\n'.join(sweep_md))
        if args.out_md:
            with open(args.out_md, 'a') as f:
                f.write('\n'.join(sweep_md) + '\n')
    if args.record:
        from ccop_plugin.utils.machine import machine_summary
        from ccop_plugin.utils.performance_record import (
            cpu_device_name,
            update_performance_record,
        )
        load2 = os.getloadavg()
        loads = [round(load0[0], 2), round(load2[0], 2)]
        values = dict(device=cpu_device_name(usable_cores=False))
        if _two_core_run(args):
            values.update(two_core_speedup_full_res=t_loop / t_tool,
                          sec_per_image_full_res=t_loop / n,
                          two_core_command=cmd, two_core_load_average=loads,
                          two_core_machine=machine_summary())
        if sweep:
            values.update(workers_speedup=sweep, sweep_command=cmd,
                          sweep_load_average=loads,
                          sweep_machine=machine_summary())
        try:
            update_performance_record(args.record, 'selective_search',
                                      values)
        except PerformanceRecordError as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
        print(f'recorded selective_search in {args.record}')
    tmp_obj.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
