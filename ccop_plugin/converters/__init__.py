"""Pre-training checkpoint -> detector weights (mmdet, Detectron2)."""
from .checkpoint import (ConversionError, describe_fpn,
                         from_detectron2_layout, infer_resnet_depth,
                         load_state_dict)
from .detectron2_converter import (convert_to_detectron2, d2_name,
                                   save_detectron2)
from .mmdet_converter import (ConversionResult, convert_to_mmdet,
                              expected_keys_for, expected_keys_from_config,
                              save_checkpoint, save_mmdet_checkpoint)

__all__ = [
    'ConversionError', 'ConversionResult', 'convert_to_detectron2',
    'convert_to_mmdet', 'd2_name', 'describe_fpn', 'expected_keys_for',
    'expected_keys_from_config', 'from_detectron2_layout',
    'infer_resnet_depth', 'load_state_dict',
    'save_checkpoint', 'save_detectron2', 'save_mmdet_checkpoint'
]
