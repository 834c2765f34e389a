"""Pre-training checkpoint -> detector weights (mmdet, Detectron2)."""
from .checkpoint import (
    ConversionError,
    check_output_path,
    describe_fpn,
    from_detectron2_layout,
    infer_resnet_depth,
    infer_resnet_width,
    load_state_dict,
)
from .detectron2_converter import (
    D2Setting,
    check_detectron2_config,
    check_detectron2_output,
    convert_to_detectron2,
    d2_name,
    detectron2_settings,
    read_detectron2_config,
    save_detectron2,
)
from .mmdet_converter import (
    ConversionResult,
    convert_to_mmdet,
    expected_keys_for,
    expected_keys_from_config,
    require_full_backbone,
    save_checkpoint,
    save_mmdet_checkpoint,
)

__all__ = [
    'ConversionError', 'ConversionResult', 'D2Setting',
    'check_detectron2_config', 'check_detectron2_output',
    'check_output_path', 'convert_to_detectron2', 'convert_to_mmdet',
    'd2_name', 'describe_fpn', 'detectron2_settings', 'expected_keys_for',
    'expected_keys_from_config', 'from_detectron2_layout',
    'infer_resnet_depth', 'infer_resnet_width', 'load_state_dict',
    'read_detectron2_config', 'require_full_backbone',
    'save_checkpoint', 'save_detectron2', 'save_mmdet_checkpoint'
]
