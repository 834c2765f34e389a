#!/usr/bin/env python
"""Fine-tune an mmdet detector from a converted checkpoint, print its AP.

    python tools/finetune_detector.py \
        configs/mask_rcnn/mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py \
        --checkpoint work_dirs/ccop_tiny/ccop_tiny_mmdet.pth \
        --data-root data/synth --work-dir work_dirs/finetune_tiny

Validates once after training; the metrics are printed as JSON and written
to <work-dir>/finetune_metrics.json (ccop_plugin.apis.finetune_detector).
"""
import argparse
import json
import sys

from mmengine.config import DictAction

from ccop_plugin.apis import finetune_detector, summarize


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
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    try:
        metrics = finetune_detector(
            a.config, a.work_dir, checkpoint=a.checkpoint,
            data_root=a.data_root, max_epochs=a.max_epochs,
            max_iters=a.max_iters, cfg_options=a.cfg_options, seed=a.seed)
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(summarize(metrics))
    print(json.dumps(metrics))
    return 0


if __name__ == '__main__':
    sys.exit(main())
