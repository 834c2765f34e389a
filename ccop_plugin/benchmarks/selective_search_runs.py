"""The selective-search benchmark's images and timed runs.

:func:`measure` fills a :class:`Bench`: the images (generated scenes with
their drawn shapes, or ``--image-dir``), the plain single-process loop and
the tool (``run_proposals``) at full resolution and at each scaled-down
size, and ``torchvision.ops.nms`` against :func:`python_greedy_nms`. The
command line is :mod:`.selective_search`; the tables and the record are
:mod:`.selective_search_report`.
"""
import argparse
import os
import os.path as osp
import time

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
from ..utils.performance_record import load_note

__all__ = [
    'python_greedy_nms', 'area', 'recall', 'loop', 'time_tool',
    'same_as_loop', 'two_core_run', 'Bench', 'measure'
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


def two_core_run(args):
    """The tool's 2-worker run on exactly 2 cores (the 2-core figure)."""
    cores = len(os.sched_getaffinity(0))
    return cores == 2 and (args.workers or cores) == 2


class Bench:
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


def _prepare_images(b: Bench) -> None:
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


def measure(b: Bench) -> None:
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


def _time_nms(b: Bench) -> None:
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
