from .intra_object_head import IntraObjectDiscriminationHead
from .object_contrastive_head import ObjectContrastiveHead

__all__ = ['ObjectContrastiveHead', 'IntraObjectDiscriminationHead']
