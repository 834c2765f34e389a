"""Model wrappers: a DDP wrapper that works for CPU and GPU modules alike,
and the one way the plugin reaches the model inside any wrapper."""
from typing import List, Optional

import torch.nn as nn
from mmengine.model import MMDistributedDataParallel, is_model_wrapper
from mmengine.registry import MODEL_WRAPPERS


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside every wrapper around ``model``.

    A wrapper is what mmengine's :func:`~mmengine.model.is_model_wrapper`
    calls one: a class registered in ``MODEL_WRAPPERS`` (torch's and
    mmengine's DDP / DataParallel, FSDP, this module's
    :class:`AnyDeviceDistributedDataParallel`) or in a child registry.
    Wrappers may be nested; an object that merely has a ``module``
    attribute is no wrapper (an EMA model has one). Hooks reach the
    algorithm through this function only.

    Args:
        model (nn.Module): ``runner.model``, wrapped or not.

    Returns:
        nn.Module: The innermost wrapped module (``model`` itself when it is
        not wrapped).
    """
    while is_model_wrapper(model):
        model = model.module
    return model


@MODEL_WRAPPERS.register_module()
class AnyDeviceDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` on CPU.

    mmengine's runner always passes ``device_ids=[LOCAL_RANK]``, which
    PyTorch refuses for a module on the CPU. This wrapper passes them on for
    GPU modules and drops them for CPU modules, so the same config trains
    with ``--launcher pytorch`` on GPUs (NCCL) and on CPU processes (gloo,
    see :func:`ccop_plugin.utils.compat.patch_mmengine_cpu_dist`).

    Args:
        module (nn.Module): Model to wrap.
        device_ids (list[int], optional): As for
            :class:`torch.nn.parallel.DistributedDataParallel`.
        **kwargs: Other DDP arguments.
    """

    def __init__(self,
                 module: nn.Module,
                 device_ids: Optional[List[int]] = None,
                 **kwargs) -> None:
        param = next(module.parameters(), None)
        if param is not None and param.device.type == 'cpu':
            device_ids = None
            kwargs.pop('output_device', None)
        super().__init__(module=module, device_ids=device_ids, **kwargs)
