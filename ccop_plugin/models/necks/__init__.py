from .dense_point_neck import DensePointNeck, PointPrototypeHead
from .mcl_neck import MCLProjector
from .object_roi_neck import ObjectRoINeck

__all__ = [
    'ObjectRoINeck', 'DensePointNeck', 'PointPrototypeHead', 'MCLProjector'
]
