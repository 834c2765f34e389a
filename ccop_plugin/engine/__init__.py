from .hooks import *  # noqa: F401,F403
from .model_wrappers import AnyDeviceDistributedDataParallel

__all__ = ['AnyDeviceDistributedDataParallel']
