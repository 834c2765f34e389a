"""Command line of ``tools/finetune_detector.py``: fine-tune an mmdet
detector from a converted checkpoint (``ccop_plugin.apis``'
``finetune_detector``) and print its AP; :func:`main` returns the exit
status.
"""
import argparse
import json
import sys
from typing import Optional, Sequence

from mmengine.config import DictAction

from ..apis import finetune_detector, summarize
from ..utils.checkpoint_safety import (
    CheckpointError,
    error_line,
    trust_checkpoints,
)
from .hooks import NonFiniteLossError

__all__ = ['build_parser', 'main']


def build_parser() -> argparse.ArgumentParser:
    """``tools/finetune_detector.py``'s options."""
    p = argparse.ArgumentParser(
        description='Fine-tune an mmdet detector from a converted '
        'checkpoint, print its AP.')
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
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/finetune_detector.py``: fine-tune, print the metrics;
    returns the exit status (1 with one ``error:`` line for a checkpoint
    that is missing, refused or unreadable)."""
    a = build_parser().parse_args(argv)
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
    except (FileNotFoundError, ValueError, NonFiniteLossError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    finally:
        if a.trust_checkpoint:
            trust_checkpoints(False)
    print(summarize(metrics))
    print(json.dumps(metrics))
    return 0

