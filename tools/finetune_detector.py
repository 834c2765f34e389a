#!/usr/bin/env python
"""Fine-tune an mmdet detector from a converted checkpoint, print its AP.

    python tools/finetune_detector.py \
        configs/mask_rcnn/mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py \
        --checkpoint work_dirs/ccop_tiny/ccop_tiny_mmdet.pth \
        --data-root data/synth --work-dir work_dirs/finetune_tiny

Validates once after training; the metrics are printed as JSON and written
to <work-dir>/finetune_metrics.json (ccop_plugin.apis.finetune_detector).
Checkpoints load safely (ccop_plugin.utils.checkpoint_safety); one that safe
loading refuses is reported in one line (exit 1) and is loaded only with
--trust-checkpoint (or CCOP_TRUST_CHECKPOINTS=1), for files you trust.
"""
import argparse
import json
import sys

from mmengine.config import DictAction

from ccop_plugin.apis import finetune_detector, summarize
from ccop_plugin.engine.hooks import NonFiniteLossError
from ccop_plugin.utils.checkpoint_safety import (
    CheckpointError,
    error_line,
    trust_checkpoints,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='mmdet config')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--checkpoint', help='converted pre-training checkpoint '
                   '(tools/convert_ccop_to_mmdet.py); none: the config\'s '
                   'own initialisation')
    p.add_argument('--data-root', help='dataset root replacing the config\'s')
    p.add_argument('--max-epochs', type=int)
    p.add_argument('--max-iters', type=int,
                   help='iteration-based smoke run instead of epochs')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, xxx=yyy')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load a checkpoint that safe loading refuses with '
                   'full unpickling, which runs any code the file carries: '
                   'only for files you trust (as CCOP_TRUST_CHECKPOINTS=1)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.trust_checkpoint:
        trust_checkpoints()
    try:
        metrics = finetune_detector(
            a.config, a.work_dir, checkpoint=a.checkpoint,
            data_root=a.data_root, max_epochs=a.max_epochs,
            max_iters=a.max_iters, cfg_options=a.cfg_options, seed=a.seed)
    except CheckpointError as e:  # refused or unreadable: one line
        print(error_line(e), file=sys.stderr)
        return 1
    except (FileNotFoundError, NonFiniteLossError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        if a.trust_checkpoint:
            trust_checkpoints(False)
    print(summarize(metrics))
    print(json.dumps(metrics))
    return 0


if __name__ == '__main__':
    sys.exit(main())
