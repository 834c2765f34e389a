"""Small, fast building blocks for tests of ccop_plugin and of plugins built
on it (the role of ``mmdet.testing``): tiny data sets, a narrow model, light
checkpoints, the main job's smallest settings. Nothing here downloads
anything or reads the repository's folders; ``tests/conftest.py`` turns
these into pytest fixtures (several of them built once per session).
"""
from .data import write_tiny_detection_coco, write_tiny_proposal_coco
from .jobs import tiny_main_job_config
from .models import (
    NARROW_BASE_CHANNELS,
    NARROW_HIDDEN_CHANNELS,
    light_checkpoints,
    narrow_resnet18,
    write_tiny_ccop_checkpoint,
)

__all__ = [
    'write_tiny_proposal_coco', 'write_tiny_detection_coco',
    'narrow_resnet18', 'light_checkpoints', 'write_tiny_ccop_checkpoint',
    'tiny_main_job_config', 'NARROW_BASE_CHANNELS', 'NARROW_HIDDEN_CHANNELS'
]
