#!/usr/bin/env python
"""Object-level linear probe of a pre-training checkpoint.

    python tools/linear_probe.py CHECKPOINT --data-root work_dirs/demo/data
    python tools/linear_probe.py none --data-root ... --seed 1   # random init
    python tools/linear_probe.py supervised --data-root ... --seed 0 \\
        --val-split test      # the positive control

Frozen backbone (C3 + C4 by default, --stages; never an FPN: the same
layers for every method),
RoIAlign features of the ground-truth boxes pooled to POOL x POOL, a logistic
regression fitted on the train split, its L2 weight and iterations chosen on
--select-split, scored on --val-split. "supervised" first trains the same
ResNet supervised on the train split's boxes and labels (the probe's
positive control). Prints one line; --out writes the full result as JSON (an
existing file is kept unless --overwrite).
"""
import sys

from ccop_plugin.evaluation.cli import main

if __name__ == '__main__':
    sys.exit(main())
