from .object_roi_neck import ObjectRoINeck, boxes_to_rois
from .dense_point_neck import DensePointNeck, PointPrototypeHead

__all__ = ['ObjectRoINeck', 'boxes_to_rois', 'DensePointNeck', 'PointPrototypeHead']
