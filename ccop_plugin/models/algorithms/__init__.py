from .ccop import CCOP
from .mcl import MCL
from .plrc import PLRC

__all__ = ['CCOP', 'MCL', 'PLRC']
