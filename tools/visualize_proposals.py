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
import sys

from ccop_plugin.proposals.cli import visualize_main

if __name__ == '__main__':
    sys.exit(visualize_main())
