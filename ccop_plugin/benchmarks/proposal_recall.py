"""Proposal quality on the embedded labelled split: recall and AR at k.

The library of ``tools/benchmark_proposal_recall.py`` (:func:`parse_args`,
:func:`run_recall_benchmark`).
For each image size: generates the embedded dataset (val split, the demo's
generator), computes selective-search proposals with the library's runner
(presets ccop and soco, each at full resolution and with --max-size 320) and
heat-map proposals (HeatmapProposalGenerator on a ResNet's C5; a randomly
initialised ResNet-18 unless --checkpoint), then measures every proposal
file with ccop_plugin.proposals.recall (mmdet's matching). Intermediate
files live under --work-dir and are reused by a rerun; the Markdown and JSON
records are written here and kept unless --overwrite.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import time
from typing import Optional, Sequence

__all__ = ['RecallBenchmarkError', 'build_parser', 'parse_args', 'settings',
           'command_line',
           'run_recall_benchmark']


class RecallBenchmarkError(RuntimeError):
    """The benchmark cannot go on; the message names the file or setting
    and the problem."""


def build_parser() -> argparse.ArgumentParser:
    """``tools/benchmark_proposal_recall.py``'s options."""
    p = argparse.ArgumentParser(
        description='Proposal quality on the embedded labelled split: '
        'recall and AR at k.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/proposal_recall')
    p.add_argument('--img-sizes', type=int, nargs='+', default=[128],
                   help='square image sides of the generated dataset (128 '
                   'is the demo\'s)')
    p.add_argument('--num-val', type=int, default=40,
                   help='labelled images measured (the val split)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--checkpoint', help='also measure heat-map proposals of '
                   'this pre-training checkpoint')
    p.add_argument('--heatmap-scale', type=int, default=224,
                   help='input side of the heat-map backbone')
    p.add_argument('--heatmap-boxes', type=int, default=100)
    p.add_argument('--workers', type=int, default=None,
                   help='selective-search workers (default: all cores)')
    p.add_argument('--out-md', default='docs/benchmarks/proposal_recall.md')
    p.add_argument('--out-json',
                   default='docs/benchmarks/proposal_recall.json')
    p.add_argument('--overwrite', action='store_true',
                   help='replace existing --out-md / --out-json')
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def settings(checkpoint):
    """(label, kind, options) of every proposal source measured."""
    rows = [('ss ccop', 'ss', dict(preset='ccop')),
            ('ss ccop --max-size 320', 'ss',
             dict(preset='ccop', max_size=320)),
            ('ss soco', 'ss', dict(preset='soco')),
            ('ss soco --max-size 320', 'ss',
             dict(preset='soco', max_size=320)),
            ('heat-map R18 random init', 'heatmap', dict(checkpoint=None))]
    if checkpoint:
        rows.append((f'heat-map {osp.basename(checkpoint)}', 'heatmap',
                     dict(checkpoint=checkpoint)))
    return rows


def run_one(kind, opts, entries, img_dir, tag_dir, args):
    """Write the proposal file of one setting.

    Selective-search files are resumed / reused by the runner; the seconds
    of the run that computed them are kept in ``timing.json`` next to them.

    Returns:
        tuple: ``(proposal file, seconds, settings dict)``.
    """
    from ..proposals import (
        RunOptions,
        build_heatmap_backbone,
        get_preset,
        run_proposals,
        write_heatmap_proposals,
    )
    os.makedirs(tag_dir, exist_ok=True)
    out = osp.join(tag_dir, 'proposals.json')
    timing = osp.join(tag_dir, 'timing.json')
    t0 = time.perf_counter()
    if kind == 'ss':
        cfg = get_preset(opts['preset'], max_size=opts.get('max_size'))
        summary = run_proposals(
            entries, img_dir, cfg, osp.join(tag_dir, 'state'),
            RunOptions(out=out, workers=args.workers, progress=False,
                       log=lambda *a: None)).to_dict()
        from ..utils.fileio import atomic_write_json
        settings = dict(kind='selective search', **cfg.to_dict(),
                        workers=summary.get('workers'))
        secs = time.perf_counter() - t0
        if summary.get('processed'):
            atomic_write_json(timing, dict(seconds=secs))
        elif osp.isfile(timing):  # reused: the time of the run that did it
            with open(timing) as f:
                secs = json.load(f)['seconds']
        else:
            secs = float('nan')
        return out, secs, settings
    from ..models.utils.heatmap_proposals import (
        HeatmapProposalGenerator,
    )
    backbone, desc = build_heatmap_backbone(opts['checkpoint'], 18,
                                            args.seed)
    gen_cfg = dict(num_boxes=args.heatmap_boxes, thr=0.1, window=0.5,
                   suppress_radius=0.5, min_size=8)
    settings = dict(kind='heat map', backbone=desc,
                    img_scale=args.heatmap_scale, **gen_cfg)
    write_heatmap_proposals(entries, img_dir, out, backbone,
                            HeatmapProposalGenerator(**gen_cfg),
                            args.heatmap_scale, overwrite=True,
                            info=dict(source='benchmark_proposal_recall',
                                      **settings))
    return out, time.perf_counter() - t0, settings


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """The tool's command line, as the record keeps it."""
    return 'python tools/benchmark_proposal_recall.py ' + ' '.join(
        argv if argv is not None else sys.argv[1:])


def run_recall_benchmark(args: argparse.Namespace, cmd: str) -> int:
    """Measure every setting on every image size; write the records.

    Returns:
        int: 0.

    Raises:
        RecallBenchmarkError: A record exists and ``--overwrite`` is not
            set (raised before any work), the dataset cannot be generated,
            or a setting fails.
    """
    for path in (args.out_md, args.out_json):
        if osp.exists(path) and not args.overwrite:
            raise RecallBenchmarkError(
                f'{path}: exists; pass --overwrite to replace it')
    from ..proposals.recall import AR_IOU_THRS
    record = dict(command=cmd,
                  date=time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                  machine=f'{platform.machine()}, {os.cpu_count()} cores '
                  f'visible, Python {platform.python_version()}',
                  ar_iou_thrs=list(AR_IOU_THRS), datasets=[])
    md = []
    for size in args.img_sizes:
        dataset, lines = _measure_size(args, size)
        record['datasets'].append(dataset)
        md += lines
    _write_records(args, record, md)
    return 0


def _measure_size(args: argparse.Namespace, size: int) -> tuple:
    """Generate the ``size`` px split and measure every setting on it.

    Returns:
        tuple: ``(the record's dataset entry, Markdown lines)``.
    """
    from ..datagen import generate_synthetic_coco
    from ..proposals import list_coco_images
    from ..proposals.recall import (
        evaluate_proposal_file,
        format_recall_markdown,
        format_recall_table,
        load_ground_truth,
    )
    root = osp.join(args.work_dir, f'data_{size}px')
    try:
        generate_synthetic_coco(root, seed=args.seed, num_unlabeled=0,
                                num_train=0, num_val=args.num_val,
                                img_size=size)
    except (ValueError, FileExistsError) as e:
        raise RecallBenchmarkError(str(e)) from e
    ann = osp.join(root, 'annotations', 'instances_val.json')
    img_dir = osp.join(root, 'images', 'val')
    entries = list_coco_images(ann)
    gt = load_ground_truth(ann)
    rows, details = [], []
    for label, kind, opts in settings(args.checkpoint):
        tag = label.replace(' ', '_').replace('-', '').replace('/', '_')
        try:
            out, secs, setting = run_one(
                kind, opts, entries, img_dir,
                osp.join(args.work_dir, f'{size}px', tag), args)
            res = evaluate_proposal_file(ann, out, gt=gt)
        except (ValueError, FileNotFoundError, FileExistsError) as e:
            raise RecallBenchmarkError(f'{label}: {e}') from e
        rows.append((label, res))
        details.append(dict(label=label, seconds=round(secs, 1),
                            settings=setting, **res))
        print(f'{size} px: {label}: {secs:.1f} s', flush=True)
    head = (f'{args.num_val} images of {size} x {size} px, '
            f'{gt.num_boxes} ground-truth boxes (seed {args.seed})')
    print(f'\n{head}\n{format_recall_table(rows)}\n', flush=True)
    dataset = dict(img_size=size, images=len(gt.names),
                   gt_boxes=gt.num_boxes, results=details)
    md = [f'## {head}', '', format_recall_markdown(rows), '',
          'Seconds to compute the proposals (this machine, shared '
          'cores): ' + ', '.join(f'{d["label"]} {d["seconds"]}'
                                 for d in details) + '.', '']
    return dataset, md


def _write_records(args: argparse.Namespace, record: dict, md: list) -> None:
    """Write ``--out-md`` (an explanation, then ``md``) and ``--out-json``."""
    from ..utils.fileio import atomic_write_text
    text = ['# Proposal recall on the embedded labelled split', '',
            f'Written by `{record["command"]}` on {record["date"]} '
            f'({record["machine"]}). Raw results: '
            f'`{osp.basename(args.out_json)}`.', '',
            '`R@k/t`: fraction of ground-truth boxes (iscrowd left out) '
            'matched by one of the first k proposals of their image at IoU '
            '>= t (mmdet\'s greedy one-to-one matching); `AR@k`: mean over '
            'IoU 0.50:0.05:0.95; `props/img`: valid proposals per image; '
            '`distinct/img`: of those, different boxes (the heat-map '
            'generator repeats boxes once the heat map is spent); '
            '`missing`: ground-truth images absent from the proposal file. '
            'The `ccop` preset keeps at most 50 proposals, so its R@100 '
            'equals R@50; it ranks its boxes by random NMS scores, so its '
            'R@10 is that of 10 random boxes of its set. '
            '`--max-size 320` changes nothing on images whose longer side '
            'is 320 px or less. The heat-map rows without a checkpoint use a '
            '**randomly initialised** ResNet-18: a baseline, not the '
            'method\'s proposals; rerun with `--checkpoint` for a trained '
            'network.', ''] + md
    atomic_write_text(args.out_md, '\n'.join(text))
    atomic_write_text(args.out_json, json.dumps(record, indent=1) + '\n')
    print(f'wrote {args.out_md} and {args.out_json}')
