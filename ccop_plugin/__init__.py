"""ccop_plugin: object-level self-supervised pre-training for detection.

Importing the package registers every module of the plugin: pre-training parts
into mmpretrain's registries, detection parts into mmdet's. Configs load it with
``custom_imports = dict(imports=['ccop_plugin'], allow_failed_imports=False)``.
"""
from .version import __version__
from .utils.compat import (allow_mmengine_checkpoints, patch_mmcv_adjust_hue,
                           patch_mmengine_cpu_dist)
from .utils.lvis_compat import patch_lvis_numpy2

# Fixes for the pinned stack on recent torch / NumPy: see utils/compat.py.
allow_mmengine_checkpoints()
patch_mmcv_adjust_hue()
patch_mmengine_cpu_dist()
patch_lvis_numpy2()  # lvis 0.5.3's np.float: see utils/lvis_compat.py
from . import datasets  # noqa: F401,E402  (registers transforms and datasets)
from . import engine  # noqa: F401,E402  (registers hooks)
from . import models  # noqa: F401,E402  (registers models)

__all__ = ['__version__']
