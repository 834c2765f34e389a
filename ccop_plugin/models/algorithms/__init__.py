from .ccop import CCOP
from .heatmap_ccop import HeatmapCCOP
from .mcl import MCL
from .object_branch import ObjectBranch, with_object_branch
from .plrc import PLRC

__all__ = ['CCOP', 'HeatmapCCOP', 'MCL', 'ObjectBranch', 'PLRC',
           'with_object_branch']
