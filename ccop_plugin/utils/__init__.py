from .boxes import (box_area, box_iou, clip_boxes, xywh_to_xyxy,
                    xyxy_to_xywh)

__all__ = ['box_area', 'box_iou', 'clip_boxes', 'xywh_to_xyxy', 'xyxy_to_xywh']
