from .ccop import CCOP
from .heatmap_ccop import HeatmapCCOP
from .mcl import MCL
from .object_branch import ObjectBranch
from .plrc import PLRC
from .with_object_branch import with_object_branch

__all__ = ['CCOP', 'HeatmapCCOP', 'MCL', 'ObjectBranch', 'PLRC',
           'with_object_branch']
