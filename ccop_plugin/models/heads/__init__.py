from .intra_object_head import IntraObjectDiscriminationHead
from .mcl_head import MCLHead
from .object_contrastive_head import ObjectContrastiveHead
from .point_heads import PointContrastHead, PointDistillationHead
from .point_prototype_head import PointPrototypeHead

__all__ = [
    'ObjectContrastiveHead', 'IntraObjectDiscriminationHead', 'MCLHead',
    'PointContrastHead', 'PointDistillationHead', 'PointPrototypeHead'
]
