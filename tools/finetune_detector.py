#!/usr/bin/env python
"""Fine-tune an mmdet detector from a converted checkpoint, print its AP.

    python tools/finetune_detector.py \
        configs/mask_rcnn/mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py \
        --checkpoint work_dirs/ccop_tiny/ccop_tiny_mmdet.pth \
        --data-root data/synth --work-dir work_dirs/finetune_tiny

Classes and heads come from the train annotation file (a category subset
of any ids and names works; ccop_plugin.apis.label_space). Validates once
after training; the metrics are printed as JSON and written
to <work-dir>/finetune_metrics.json (ccop_plugin.apis.finetune_detector).
Checkpoints load safely (ccop_plugin.utils.checkpoint_safety); one that safe
loading refuses is reported in one line (exit 1) and is loaded only with
--trust-checkpoint (or CCOP_TRUST_CHECKPOINTS=1), for files you trust.
"""
import sys

from ccop_plugin.engine.finetune_cli import main

if __name__ == '__main__':
    sys.exit(main())
