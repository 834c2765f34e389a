"""CCOP vs MoCo v2 vs no pre-training (and ablations), several seeds each.

    python tools/compare_pretraining.py --seeds 3
    python tools/compare_pretraining.py --seeds 3 --methods all \
        --pretrain-iters 100 --num-test 100 \
        --record docs/benchmarks/science_100iters.json
    make science   # the README's 200-iteration table (see the Makefile)

Pre-trains each method on the synthetic unlabeled split with the same number
of iterations and batch, fine-tunes Mask R-CNN identically, evaluates it on a
held-out test split (--num-test) and measures the linear-probe accuracy; each
method runs once per seed (seeds --seed, --seed + 1, ...: data order,
initialisation, augmentation; the data is that of --seed for every run).
Writes ``<work-dir>/comparison.md`` (mean ± std), the report with a plot with
error bars, and the record (--record). Finished stages are reused, shared
with ``tools/run_demo.py`` when both use the same work dir and settings.
"""
import sys

from ccop_plugin.apis.comparison_cli import main

if __name__ == '__main__':
    sys.exit(main())
