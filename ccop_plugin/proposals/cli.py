"""Command lines of the proposal tools.

``tools/selective_search.py``, ``tools/merge_proposals.py``,
``tools/visualize_proposals.py`` and ``tools/proposal_recall.py`` are a call
to one ``*_main`` function here: it parses the arguments, runs, prints a
failure as one ``error:`` line and returns the exit status (1 for bad input
or a refused file, the code of :class:`ProposalRunInterrupted` for a
stopped run, 130 for Ctrl-C); nothing here ends the process.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Optional, Sequence

__all__ = [
    'build_search_parser', 'build_search_config', 'selective_search_main',
    'build_merge_parser', 'merge_main', 'build_visualize_parser',
    'visualize_main', 'build_recall_parser', 'recall_main'
]

PRESET_NAMES = ('ccop', 'soco')


def _optional(cast):
    """argparse type: a value, or 'none' (-> disabled)."""
    def parse(s):
        return 'none' if s.lower() in ('none', 'off') else cast(s)
    parse.__name__ = cast.__name__
    return parse


def _error(message) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 1


# ---------------------------------------------------------- selective search
def build_search_parser() -> argparse.ArgumentParser:
    """``tools/selective_search.py``'s options."""
    p = argparse.ArgumentParser(
        description='Selective-search object proposals for a whole '
        'pre-training set.',
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
    _add_search_options(p.add_argument_group(
        'search (default: from the preset)'))
    _add_filter_options(p.add_argument_group(
        'filters (default: from the preset)'))
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
    return p


def _add_search_options(g) -> None:
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


def _add_filter_options(g) -> None:
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


def build_search_config(args: argparse.Namespace):
    """The :class:`ProposalConfig` of the preset with the given options
    (``none`` disables a step).

    Raises:
        ValueError: The options make no valid configuration.
    """
    from .config import get_preset
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


def selective_search_main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/selective_search.py``: parse, search, return the exit
    status."""
    from . import (
        ProposalRunInterrupted,
        ProposalStateError,
        RunOptions,
        list_images,
        parse_shard,
        run_proposals,
    )
    args = build_search_parser().parse_args(argv)
    try:
        cfg = build_search_config(args)
        shard = parse_shard(args.shard)
        entries = list_images(args.img_dir, args.ann_file, args.limit)
    except (ValueError, FileNotFoundError) as e:
        return _error(e)
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
        return _error(e)
    except ProposalRunInterrupted as e:
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    if shard[1] > 1:
        print(f'shard {args.shard} finished; when all {shard[1]} shards are '
              f'done: python tools/merge_proposals.py --out {args.out}'
              + (f' --work-dir {work_dir}' if args.work_dir else ''))
    return 0


# ---------------------------------------------------------------------- merge
def build_merge_parser() -> argparse.ArgumentParser:
    """``tools/merge_proposals.py``'s options."""
    p = argparse.ArgumentParser(
        description='Merge the shards of a selective-search run into the '
        'final proposal JSON.')
    p.add_argument('--out', required=True, help='proposal JSON to write')
    p.add_argument('--work-dir', help='work dir of the run (default: '
                   '<out>.work)')
    p.add_argument('--allow-missing', action='store_true',
                   help='write the JSON even if some images have no result')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out that was not written from '
                   'this work dir')
    return p


def merge_main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/merge_proposals.py``: parse, merge, return the exit status."""
    from . import ProposalStateError, merge_work_dir
    args = build_merge_parser().parse_args(argv)
    work_dir = args.work_dir or args.out + '.work'
    try:
        m = merge_work_dir(work_dir, args.out,
                           allow_missing=args.allow_missing,
                           overwrite=args.overwrite)
    except ProposalStateError as e:
        return _error(e)
    print(f'wrote {m["out"]}: {m["images"]} images, {m["annotations"]} '
          f'proposals ({m["annotations"] / max(1, m["images"]):.1f} per '
          f'image), {m["failures"]} failed, {m["missing"]} missing, '
          f'{m["size_mb"]:.1f} MiB')
    return 0


# ------------------------------------------------------------------ visualize
def build_visualize_parser() -> argparse.ArgumentParser:
    """``tools/visualize_proposals.py``'s options."""
    from .config import PRESETS
    p = argparse.ArgumentParser(
        description="Draw one image's proposals to a PNG.")
    p.add_argument('image', help='image root (with --proposals) or an image '
                   'file (without)')
    p.add_argument('--proposals', help='proposal JSON; select the image with '
                   '--file-name, --image-id or --index (default: first)')
    p.add_argument('--file-name')
    p.add_argument('--image-id', type=int)
    p.add_argument('--index', type=int)
    p.add_argument('--preset', choices=sorted(PRESETS), default='ccop',
                   help='settings when computing proposals on the fly')
    p.add_argument('--max-size', type=int, help='search on a shrunk image')
    p.add_argument('--max-num', type=int, help='draw only the first N boxes')
    p.add_argument('--thickness', type=int, default=2)
    p.add_argument('--out', required=True, help='PNG to write')
    return p


def visualize_main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/visualize_proposals.py``: parse, draw, return the exit
    status."""
    import cv2

    from . import (
        draw_proposals,
        get_preset,
        propose,
        read_image,
        read_image_proposals,
    )
    from .store import boxes_to_record
    args = build_visualize_parser().parse_args(argv)
    if args.proposals:
        try:
            entry, boxes = read_image_proposals(
                args.proposals, args.file_name, args.image_id, args.index)
        except (OSError, ValueError) as e:
            return _error(e)
        img = read_image(osp.join(args.image, entry['file_name']))
        name = entry['file_name']
    else:
        img = read_image(args.image)
        name = osp.basename(args.image)
        cfg = get_preset(args.preset, max_size=args.max_size)
        boxes = boxes_to_record(propose(img, cfg, name)['boxes'])
    if args.max_num is not None:
        boxes = boxes[:args.max_num]
    vis = draw_proposals(img, boxes, thickness=args.thickness,
                         title=f'{name}: {len(boxes)} proposals')
    if not cv2.imwrite(args.out, vis):
        return _error(f'could not write {args.out}')
    print(f'wrote {args.out} ({len(boxes)} proposals on {name})')
    return 0


# --------------------------------------------------------------------- recall
def build_recall_parser() -> argparse.ArgumentParser:
    """``tools/proposal_recall.py``'s options."""
    p = argparse.ArgumentParser(
        description='Proposal recall against ground-truth boxes (recall and '
        'AR at k proposals).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('ann_file', help='COCO annotation file (ground truth)')
    p.add_argument('proposals', nargs='+', help='proposal JSON file(s)')
    p.add_argument('--labels', nargs='+',
                   help='row labels, one per proposal file (default: names)')
    p.add_argument('--nums', type=int, nargs='+', default=[10, 50, 100],
                   help='numbers of leading proposals')
    p.add_argument('--iou', type=float, nargs='+', default=[0.5, 0.7],
                   help='IoU thresholds of the recall columns')
    p.add_argument('--out-json', help='write the results as JSON')
    p.add_argument('--out-md', help='write the table as Markdown')
    p.add_argument('--overwrite', action='store_true',
                   help='replace existing --out-json / --out-md files')
    return p


def _check_outputs(paths, overwrite):
    """One-line error for an output that exists (without --overwrite) or
    is a folder."""
    for path in paths:
        if path is None:
            continue
        if osp.isdir(path):
            raise ValueError(f'{path}: is a folder; give an output file')
        if osp.exists(path) and not overwrite:
            raise ValueError(f'{path}: exists; pass --overwrite to replace '
                             'it')


def recall_main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/proposal_recall.py``: measure, print, write; returns the exit
    status (1 with one ``error:`` line for bad options or inputs)."""
    from ..utils.fileio import atomic_write_text
    args = build_recall_parser().parse_args(argv)
    try:
        if args.labels and len(args.labels) != len(args.proposals):
            raise ValueError(f'--labels: {len(args.labels)} labels for '
                             f'{len(args.proposals)} proposal files')
        if any(n < 1 for n in args.nums):
            raise ValueError(f'--nums must be >= 1, got {args.nums}')
        if any(not 0 < t <= 1 for t in args.iou):
            raise ValueError(f'--iou must be in (0, 1], got {args.iou}')
        _check_outputs([args.out_json, args.out_md], args.overwrite)
        from .recall import (
            evaluate_proposal_file,
            format_recall_markdown,
            format_recall_table,
            load_ground_truth,
        )
        gt = load_ground_truth(args.ann_file)
        labels = args.labels or [osp.basename(p) for p in args.proposals]
        rows = []
        for label, path in zip(labels, args.proposals):
            rows.append((label, evaluate_proposal_file(
                args.ann_file, path, args.nums, args.iou, gt=gt)))
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.ann_file}: {len(gt.names)} images, {gt.num_boxes} '
          f'ground-truth boxes ({gt.num_ignored} crowd/ignored left out)')
    print(format_recall_table(rows))
    for label, r in rows:
        if r['missing_images'] or r['dropped_invalid']:
            print(f'note: {label}: {r["missing_images"]} ground-truth '
                  'images missing from the file (zero recall), '
                  f'{r["dropped_invalid"]} invalid boxes dropped')
    if args.out_json:
        atomic_write_text(args.out_json, json.dumps(
            [dict(label=label, **r) for label, r in rows], indent=1) + '\n')
    if args.out_md:
        atomic_write_text(args.out_md, format_recall_markdown(rows) + '\n')
    return 0

