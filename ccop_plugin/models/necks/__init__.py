from .object_roi_neck import ObjectRoINeck, boxes_to_rois

__all__ = ['ObjectRoINeck', 'boxes_to_rois']
