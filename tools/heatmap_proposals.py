#!/usr/bin/env python
"""Heat-map proposals of an image set, as a proposal file.

    python tools/heatmap_proposals.py data/synth/images/val \\
        --ann-file data/synth/annotations/instances_val.json \\
        --checkpoint work_dirs/heatmap/epoch_200.pth --out heatmap_val.json

Runs a ResNet (the query encoder of --checkpoint, read like the converters
read it; without --checkpoint a randomly initialised ResNet, a baseline only)
over every image resized to --img-scale and draws boxes from its C5 heat map
exactly as HeatmapProposalHook does in pre-training. The file has the format
of tools/selective_search.py (boxes best first); measure it with
tools/proposal_recall.py. An existing --out is kept unless --overwrite.
"""
import argparse
import os.path as osp
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('img_dir', help='image root')
    p.add_argument('--ann-file', help='COCO file whose "images" list is used '
                   '(default: every image under img_dir)')
    p.add_argument('--out', required=True, help='output proposal JSON')
    p.add_argument('--checkpoint', help='pre-training checkpoint (default: '
                   'random initialisation)')
    p.add_argument('--depth', type=int, default=18,
                   help='ResNet depth without --checkpoint')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the random initialisation')
    p.add_argument('--img-scale', type=int, default=224,
                   help='square input side')
    p.add_argument('--num-boxes', type=int, default=100,
                   help='most boxes per image')
    p.add_argument('--thr', type=float, default=0.1)
    p.add_argument('--window', type=float, default=0.5)
    p.add_argument('--suppress-radius', type=float, default=0.5)
    p.add_argument('--min-size', type=float, default=8.,
                   help='smallest box side in input pixels')
    p.add_argument('--limit', type=int, help='only the first N images')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing --out')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out}: exists; pass --overwrite to replace it',
              file=sys.stderr)
        return 1
    from ccop_plugin.models.utils.heatmap_proposals import (
        HeatmapProposalGenerator,
    )
    from ccop_plugin.proposals import (
        build_heatmap_backbone,
        list_images,
        write_heatmap_proposals,
    )
    try:
        entries = list_images(args.img_dir, args.ann_file, args.limit)
        backbone, desc = build_heatmap_backbone(args.checkpoint, args.depth,
                                                args.seed)
        gen = HeatmapProposalGenerator(
            num_boxes=args.num_boxes, thr=args.thr, window=args.window,
            suppress_radius=args.suppress_radius, min_size=args.min_size)
        counts = write_heatmap_proposals(
            entries, args.img_dir, args.out, backbone, gen, args.img_scale,
            overwrite=args.overwrite,
            info=dict(source='tools/heatmap_proposals.py', backbone=desc,
                      img_scale=args.img_scale, num_boxes=args.num_boxes,
                      thr=args.thr, window=args.window,
                      suppress_radius=args.suppress_radius,
                      min_size=args.min_size))
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{args.out}: {counts["images"]} images, {counts["annotations"]} '
          f'boxes ({counts["proposals_per_image"]} per image); {desc}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
