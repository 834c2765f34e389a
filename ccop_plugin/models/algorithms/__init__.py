from .ccop import CCOP
from .heatmap_ccop import HeatmapCCOP
from .mcl import MCL
from .plrc import PLRC

__all__ = ['CCOP', 'HeatmapCCOP', 'MCL', 'PLRC']
