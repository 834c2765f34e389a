"""CCOP vs mmpretrain MoCo v2 vs no pre-training, same data and budget.

    python tools/compare_pretraining.py            # work_dirs/demo/comparison.md

Pre-trains each method on the synthetic unlabeled split with the same number
of iterations and batch, fine-tunes Mask R-CNN identically and prints one COCO
AP table (the papers' experiment at toy scale). Shares finished stages with
``tools/run_demo.py`` when both use the same work dir.
"""
import sys

from ccop_plugin.apis.main_job import run_comparison
from run_demo import parse_args


def main(argv=None) -> int:
    run_comparison(parse_args(argv))
    return 0


if __name__ == '__main__':
    sys.exit(main())
