from .boxes import box_area, box_iou, xywh_to_xyxy, xyxy_to_xywh
from .config_path import get_config_path, get_config_root, list_configs

__all__ = ['box_area', 'box_iou', 'xywh_to_xyxy', 'xyxy_to_xywh',
           'get_config_path', 'get_config_root', 'list_configs']
