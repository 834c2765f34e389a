"""Compatibility of the pinned OpenMMLab stack with recent PyTorch.

PyTorch >= 2.6 loads checkpoints with ``weights_only=True`` unless told
otherwise, while mmengine 0.10.x calls ``torch.load`` without that argument and
stores plain Python/NumPy objects in every checkpoint (message hub, meta,
scheduler states). Resuming a run then fails with an ``UnpicklingError``.

:func:`allow_mmengine_checkpoints` restores the behaviour mmengine was written
for by setting ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for this process (and its
data-loader workers) unless the user already set that variable. Only load
checkpoints you trust, as with any mmengine version before this change.
"""
import os

import torch
from mmengine.utils import digit_version

ENV_VAR = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


def allow_mmengine_checkpoints() -> bool:
    """Let mmengine load its own (pickled) checkpoints under torch >= 2.6.

    Returns:
        bool: Whether the environment variable was set by this call.
    """
    torch_version = digit_version(torch.__version__.split('+')[0])
    if torch_version < digit_version('2.6.0') or ENV_VAR in os.environ:
        return False
    os.environ[ENV_VAR] = '1'
    return True
