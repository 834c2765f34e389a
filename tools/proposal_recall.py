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
import sys

from ccop_plugin.proposals.cli import recall_main

if __name__ == '__main__':
    sys.exit(recall_main())
