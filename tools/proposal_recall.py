#!/usr/bin/env python
"""Proposal recall against ground-truth boxes (recall and AR at k proposals).

    python tools/proposal_recall.py \\
        data/synth/annotations/instances_val.json \\
        ss_val.json heatmap_val.json --labels ss heatmap \\
        --out-json recall.json --out-md recall.md

Reads the ground truth of a COCO annotation file (iscrowd boxes ignored) and
one or more proposal files (the format tools/selective_search.py writes; the
first k boxes of an image are its top k). Prints recall at 10/50/100
proposals and IoU 0.5/0.7, and AR (IoU 0.5:0.95) at each number. Ground-truth
images missing from a proposal file count as images without proposals (the
table's "missing" column). Existing outputs are kept unless --overwrite.
"""
import argparse
import json
import os.path as osp
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
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
    return p.parse_args(argv)


def check_outputs(paths, overwrite):
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


def write_text(path, text):
    """Write atomically (:mod:`ccop_plugin.utils.fileio`)."""
    from ccop_plugin.utils.fileio import atomic_write_text
    atomic_write_text(path, text)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.labels and len(args.labels) != len(args.proposals):
            raise ValueError(f'--labels: {len(args.labels)} labels for '
                             f'{len(args.proposals)} proposal files')
        if any(n < 1 for n in args.nums):
            raise ValueError(f'--nums must be >= 1, got {args.nums}')
        if any(not 0 < t <= 1 for t in args.iou):
            raise ValueError(f'--iou must be in (0, 1], got {args.iou}')
        check_outputs([args.out_json, args.out_md], args.overwrite)
        from ccop_plugin.proposals.recall import (
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
        write_text(args.out_json, json.dumps(
            [dict(label=label, **r) for label, r in rows], indent=1) + '\n')
    if args.out_md:
        write_text(args.out_md, format_recall_markdown(rows) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
