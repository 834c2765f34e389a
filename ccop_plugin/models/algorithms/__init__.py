from .ccop import CCOP

__all__ = ['CCOP']
