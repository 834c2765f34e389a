"""Compatibility of the pinned OpenMMLab stack with recent PyTorch / NumPy.

PyTorch >= 2.6 loads checkpoints with ``weights_only=True`` while mmengine
0.10.x stores NumPy objects and its ``HistoryBuffer`` in every checkpoint:
:mod:`ccop_plugin.utils.checkpoint_safety` rebuilds exactly those from
validated values (safe loading stays on, in this process and in its
children).

:func:`patch_mmcv_adjust_hue` fixes mmcv 2.1's hue jitter under NumPy 2;
:func:`patch_mmengine_cpu_dist` lets mmengine's ``pytorch`` launcher start
without a GPU.
"""
from typing import Optional

import numpy as np
import torch
from mmengine.utils import digit_version


def _adjust_hue_numpy2(img: np.ndarray, hue_factor: float,
                       backend: Optional[str] = None) -> np.ndarray:
    """``mmcv.adjust_hue`` that also works with NumPy 2.

    mmcv 2.1's version adds ``np.uint8(hue_factor * 255)`` to the hue channel,
    which NumPy 2 refuses for negative factors (``OverflowError``), so every
    ``ColorJitter`` with ``hue > 0`` (MoCo v2's pipeline) fails about half of
    the time. Here the shift is wrapped into ``[0, 255]`` first, which is what
    the uint8 conversion did under NumPy 1; the result is identical.
    """
    import cv2
    from mmcv.image.photometric import imread_backend
    from PIL import Image
    if backend is None:
        backend = imread_backend
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f'hue_factor:{hue_factor} is not in [-0.5, 0.5].')
    if not (isinstance(img, np.ndarray) and img.ndim in {2, 3}):
        raise TypeError('img should be ndarray with dim=[2 or 3].')
    shift = np.uint8(int(hue_factor * 255) % 256)
    if backend == 'pillow':
        assert img.dtype == np.uint8, 'Pillow backend only support uint8 type'
        pil_image = Image.fromarray(img[..., ::-1], mode='RGB')
        h, s, v = pil_image.convert('HSV').split()
        np_h = np.array(h, dtype=np.uint8)
        np_h += shift  # uint8 arithmetic wraps around the hue circle
        pil_image = Image.merge('HSV', (Image.fromarray(np_h, 'L'), s, v))
        return np.array(pil_image.convert('RGB'), dtype=img.dtype)[..., ::-1]
    dtype = img.dtype
    hsv = cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_BGR2HSV_FULL)
    h, s, v = cv2.split(hsv)
    h = h.astype(np.uint8)
    h += shift
    return cv2.cvtColor(cv2.merge([h, s, v]),
                        cv2.COLOR_HSV2BGR_FULL).astype(dtype)


def patch_mmcv_adjust_hue() -> bool:
    """Replace ``mmcv.adjust_hue`` by :func:`_adjust_hue_numpy2` under NumPy 2.

    Returns:
        bool: Whether the patch was applied.
    """
    if digit_version(np.__version__) < digit_version('2.0.0'):
        return False
    import mmcv
    import mmcv.image
    import mmcv.image.photometric as photometric
    for mod in (mmcv, mmcv.image, photometric):
        mod.adjust_hue = _adjust_hue_numpy2
    return True


def patch_mmengine_cpu_dist() -> bool:
    """Let mmengine's ``pytorch`` launcher start on machines without a GPU.

    mmengine 0.10 calls ``torch.cuda.set_device(local_rank)`` before
    ``init_process_group`` whatever the backend, so ``--launcher pytorch``
    fails at once without a CUDA driver. When no GPU is visible, the patched
    function initialises the process group directly (``nccl`` is replaced by
    ``gloo``, the only CPU backend); with a GPU it is mmengine's own. Use it
    with ``model_wrapper_cfg=dict(type='AnyDeviceDistributedDataParallel')``
    (:mod:`ccop_plugin.engine.model_wrappers`) for CPU multi-process runs.

    Returns:
        bool: Whether the patch was applied (idempotent).
    """
    from mmengine.dist import utils as dist_utils
    original = dist_utils._init_dist_pytorch
    if getattr(original, '_ccop_cpu_patch', False):
        return False

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return original(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        torch_dist.init_process_group(
            backend='gloo' if backend == 'nccl' else backend, **kwargs)

    _init_dist_pytorch._ccop_cpu_patch = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch
    return True
