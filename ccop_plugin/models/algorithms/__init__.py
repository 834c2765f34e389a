from .ccop import CCOP
from .mcl import MCL
from .object_branch import ObjectBranch
from .plrc import PLRC
from .with_object_branch import with_object_branch

__all__ = ['CCOP', 'MCL', 'ObjectBranch', 'PLRC', 'with_object_branch']
