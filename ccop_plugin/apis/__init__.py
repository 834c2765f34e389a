"""High-level helpers for transfer experiments."""
from .finetune import (
    build_finetune_cfg,
    evaluate_detector,
    finetune_detector,
    set_data_root,
    set_pretrained,
    summarize,
)

__all__ = [
    'build_finetune_cfg', 'evaluate_detector', 'finetune_detector',
    'set_data_root', 'set_pretrained', 'summarize'
]
