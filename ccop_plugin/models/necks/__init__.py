from .dense_point_neck import DensePointNeck
from .mcl_projector import MCLProjector
from .object_roi_neck import ObjectRoINeck

__all__ = ['ObjectRoINeck', 'DensePointNeck', 'MCLProjector']
