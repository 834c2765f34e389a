#!/usr/bin/env python
"""Selective-search object proposals for a whole pre-training set.

Writes the COCO-style proposal JSON read by ``LoadProposals``. Runs on every
core, shows progress with rate and ETA, survives kills (rerun the same command
to resume), records unreadable images instead of stopping, and splits into
shards for cluster job arrays.

Examples::

    # COCO train2017, CCOP's reference settings, all cores (images over
    # 2 megapixels are searched shrunk; --max-pixels none: full resolution)
    python tools/selective_search.py data/coco/train2017 \\
        --ann-file data/coco/annotations/instances_train2017.json \\
        --out data/coco/proposals/selective_search_train2017.json

    # ~5x faster: search on images shrunk to a 320 px longer side
    python tools/selective_search.py data/coco/train2017 --max-size 320 \\
        --out data/coco/proposals/selective_search_train2017_320.json

    # Slurm array of 16 tasks, then merge
    python tools/selective_search.py data/coco/train2017 \\
        --out ss.json --shard ${SLURM_ARRAY_TASK_ID}/16 \\
        --workers ${SLURM_CPUS_PER_TASK}
    python tools/merge_proposals.py --out ss.json

    # SoCo's proposal recipe
    python tools/selective_search.py data/imgs --preset soco --out soco_ss.json
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

# Kept light: ccop_plugin (and with it torch / OpenMMLab) is imported only in
# main(), after the worker fork server has been started, so the two imports
# overlap.
PRESET_NAMES = ('ccop', 'soco')


def prestart_fork_server():
    """Start the workers' fork server now; it imports the proposal runner in
    the background while this process does the same."""
    import multiprocessing as mp
    if 'forkserver' not in mp.get_all_start_methods():
        return
    from multiprocessing import forkserver
    mp.get_context('forkserver').set_forkserver_preload(
        ['ccop_plugin.proposals.runner'])
    forkserver.ensure_running()


def _optional(cast):
    """argparse type: a value, or 'none' (-> disabled)."""
    def parse(s):
        return 'none' if s.lower() in ('none', 'off') else cast(s)
    parse.__name__ = cast.__name__
    return parse


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('img_dir', help='image root; file names in the output are '
                   'relative to it')
    p.add_argument('--ann-file', help='COCO-style JSON whose "images" list '
                   '(ids, file names, order) is used instead of scanning '
                   'img_dir; its annotations are ignored')
    p.add_argument('--out', required=True, help='output proposal JSON')
    p.add_argument('--work-dir', help='resumable state (default: '
                   '<out>.work/); shared by all shards of a run')
    p.add_argument('--preset', choices=PRESET_NAMES, default='ccop',
                   help="ccop: reference CCOP filters; soco: SoCo's filter")
    g = p.add_argument_group('search (default: from the preset)')
    g.add_argument('--mode', choices=['fast', 'quality', 'single'])
    g.add_argument('--k', type=int, help='graph-segmentation k (base_k)')
    g.add_argument('--inc-k', type=int, help='k increment (fast/quality)')
    g.add_argument('--sigma', type=float, help='graph-segmentation sigma')
    g.add_argument('--max-size', type=_optional(int),
                   help='shrink images to this longer side before the search '
                   '(boxes are mapped back); none = full resolution')
    g.add_argument('--max-pixels', type=_optional(int),
                   help='cost bound: shrink images with more pixels to this '
                   'many before the search (boxes mapped back; such images '
                   'are counted in the summary); none = no bound; preset '
                   'default 2000000')
    g.add_argument('--max-search-aspect', type=_optional(float),
                   help='cost bound: squeeze images longer than this many '
                   'times their width (or height) along the long axis '
                   'before the search (a 10000x50 strip otherwise takes '
                   'minutes); none = no bound; preset default 8')
    g.add_argument('--scale-k', type=int, choices=[0, 1],
                   help='with --max-size: scale k by the pixel ratio (1, '
                   'default) or keep it (0)')
    g = p.add_argument_group('filters (default: from the preset)')
    g.add_argument('--min-aspect', type=float, help='min w/h')
    g.add_argument('--max-aspect', type=float, help='max w/h')
    g.add_argument('--min-side', type=float,
                   help='ccop: keep sqrt(w*h) > this (px)')
    g.add_argument('--min-wh', type=float, help='soco: keep w, h >= this')
    g.add_argument('--min-rel-size', type=float,
                   help='soco: min sqrt(box area / image area)')
    g.add_argument('--max-rel-size', type=float,
                   help='soco: max sqrt(box area / image area)')
    g.add_argument('--nms-iou', type=_optional(float),
                   help='greedy NMS IoU with random scores; none = no NMS')
    g.add_argument('--max-num', type=_optional(int),
                   help='proposals kept per image; none = all')
    g.add_argument('--fallback-whole-image', type=int, choices=[0, 1],
                   help='use the whole image when nothing survives')
    g.add_argument('--seed', type=int, default=0,
                   help='seed of the per-image random NMS scores')
    g = p.add_argument_group('run')
    g.add_argument('--workers', type=int,
                   help='worker processes (default: all cores available)')
    g.add_argument('--shard', help='i/n: process only shard i of n '
                   '(0-based), then merge with tools/merge_proposals.py')
    g.add_argument('--limit', type=int,
                   help='only the first N images (N >= 1)')
    g.add_argument('--retry-failed', action='store_true',
                   help='process images recorded as unreadable again')
    g.add_argument('--overwrite', action='store_true',
                   help='discard the work dir of an earlier run (refused '
                   'while a job still uses it) and replace an existing '
                   '--out that this run did not write')
    g.add_argument('--no-progress', action='store_true',
                   help='no progress bar')
    return p.parse_args(argv)


def build_config(args):
    from ccop_plugin.proposals import get_preset
    overrides = dict(
        mode=args.mode, k=args.k, inc_k=args.inc_k, sigma=args.sigma,
        max_size=args.max_size, max_pixels=args.max_pixels,
        max_search_aspect=args.max_search_aspect,
        scale_k=None if args.scale_k is None else bool(args.scale_k),
        min_aspect=args.min_aspect,
        max_aspect=args.max_aspect, min_side=args.min_side,
        min_wh=args.min_wh, min_rel_size=args.min_rel_size,
        max_rel_size=args.max_rel_size, nms_iou=args.nms_iou,
        max_num=args.max_num, seed=args.seed,
        fallback_whole_image=None if args.fallback_whole_image is None
        else bool(args.fallback_whole_image))
    disabled = [k for k, v in overrides.items() if v == 'none']
    cfg = get_preset(args.preset, **{k: v for k, v in overrides.items()
                                     if v != 'none'})
    return cfg.replace(**{k: None for k in disabled}) if disabled else cfg


def main(argv=None):
    args = parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(
        os, 'sched_getaffinity') else (os.cpu_count() or 1)
    if (args.workers or cores) > 1:
        prestart_fork_server()
    from ccop_plugin.proposals import (
        ProposalRunInterrupted,
        ProposalStateError,
        RunOptions,
        list_images,
        parse_shard,
        run_proposals,
    )
    try:
        cfg = build_config(args)
        shard = parse_shard(args.shard)
        entries = list_images(args.img_dir, args.ann_file, args.limit)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    work_dir = args.work_dir or args.out + '.work'
    source = dict(img_dir=osp.abspath(args.img_dir),
                  ann_file=osp.abspath(args.ann_file) if args.ann_file
                  else None, limit=args.limit)
    try:
        run_proposals(entries, args.img_dir, cfg, work_dir, RunOptions(
            out=args.out, workers=args.workers, shard=shard,
            retry_failed=args.retry_failed, overwrite=args.overwrite,
            progress=not args.no_progress, source=source,
            inputs=[args.ann_file]))
    except ProposalStateError as e:
        sys.exit(f'error: {e}')
    except ProposalRunInterrupted as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    if shard[1] > 1:
        print(f'shard {args.shard} finished; when all {shard[1]} shards are '
              f'done: python tools/merge_proposals.py --out {args.out}'
              + (f' --work-dir {work_dir}' if args.work_dir else ''))


if __name__ == '__main__':
    main()
