from .object_roi_neck import ObjectRoINeck
from .dense_point_neck import DensePointNeck, PointPrototypeHead

__all__ = ['ObjectRoINeck', 'DensePointNeck', 'PointPrototypeHead']
