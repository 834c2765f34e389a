"""ccop_plugin: object-level self-supervised pre-training for detection.

Importing the package registers the plugin's modules (algorithms, heads,
necks, datasets, transforms, hooks) in mmpretrain's registries, and in
mmengine's the two that pre-training and fine-tuning configs share: a DDP
wrapper for CPU and GPU modules (``MODEL_WRAPPERS``) and the work dir lock
(``HOOKS``: ``WorkDirLockHook``); it registers nothing in mmdet's
(fine-tuning uses mmdet's own detectors, initialised from the checkpoints of
:mod:`ccop_plugin.converters`). It also applies the safe
checkpoint loading and the fixes for the pinned stack (see below). Configs load
it with ``custom_imports = dict(imports=['ccop_plugin'],
allow_failed_imports=False)``; the detection configs do so for those fixes
and the DDP wrapper.
"""
from .utils.checkpoint_safety import (
    install_excepthook,
    patch_mmengine_loaders,
)
from .utils.compat import patch_mmcv_adjust_hue, patch_mmengine_cpu_dist
from .utils.lvis_compat import patch_lvis_numpy2
from .version import __version__

# Safe checkpoint loading (weights_only=True, NumPy values and the message
# hub's buffers rebuilt from validated state) for every scheme mmengine
# loads, refusals reported in one line: see utils/checkpoint_safety/.
# Fixes for the pinned stack on recent torch / NumPy: see utils/compat.py.
patch_mmengine_loaders()
install_excepthook()
patch_mmcv_adjust_hue()
patch_mmengine_cpu_dist()
patch_lvis_numpy2()  # lvis 0.5.3's np.float: see utils/lvis_compat.py
# Registers transforms and datasets, hooks, models (after the patches above).
from . import datasets, engine, models  # noqa: F401,E402

__all__ = ['__version__']
