from .hooks import *  # noqa: F401,F403
from .model_wrappers import AnyDeviceDistributedDataParallel, unwrap_model

__all__ = ['AnyDeviceDistributedDataParallel', 'unwrap_model']
