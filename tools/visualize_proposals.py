#!/usr/bin/env python
"""Draw one image's proposals to a PNG.

From a proposal JSON::

    python tools/visualize_proposals.py data/coco/train2017 \\
        --proposals data/coco/proposals/selective_search_train2017.json \\
        --file-name 000000000009.jpg --out vis.png

Or computed on the fly for a single image (no JSON needed)::

    python tools/visualize_proposals.py path/to/img.jpg --preset ccop \\
        --out vis.png
"""
import argparse
import os.path as osp
import sys

import cv2

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from ccop_plugin.proposals import (  # noqa: E402
    PRESETS,
    draw_proposals,
    get_preset,
    propose,
    read_image,
    read_image_proposals,
)
from ccop_plugin.proposals.store import boxes_to_record  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
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
    args = p.parse_args(argv)

    if args.proposals:
        try:
            entry, boxes = read_image_proposals(
                args.proposals, args.file_name, args.image_id, args.index)
        except (OSError, ValueError) as e:
            sys.exit(f'error: {e}')
        path = osp.join(args.image, entry['file_name'])
        img = read_image(path)
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
        sys.exit(f'error: could not write {args.out}')
    print(f'wrote {args.out} ({len(boxes)} proposals on {name})')


if __name__ == '__main__':
    main()
