"""Compatibility of the LVIS API (``lvis`` 0.5.3) with NumPy 2.

mmdet 3.3's ``LVISV1Dataset`` and ``LVISMetric`` use the LVIS API, whose only
registry release, ``lvis`` 0.5.3 (2020), calls ``np.float`` in
``LVISEval.accumulate``. NumPy removed that alias in 1.24, so every LVIS
evaluation fails with ``AttributeError: module 'numpy' has no attribute
'float'`` -- after a whole training epoch.

:func:`patch_lvis_numpy2` fixes that without touching NumPy itself: it gives
the module ``lvis.eval`` (and only it) a view of NumPy in which ``float`` is
the builtin ``float`` again, i.e. ``float64``, exactly what the alias meant.
Every other name resolves to NumPy unchanged; nothing outside ``lvis.eval``
sees a difference (``hasattr(numpy, 'float')`` stays False). It is a no-op
when ``lvis`` is not installed or when NumPy still has the alias.

``tools/setup_env.sh`` installs ``lvis`` with ``--no-deps``: its metadata
requires ``opencv-python``, which would hide ``cv2.ximgproc`` (the contrib
build that selective search needs); its real needs (NumPy, pycocotools,
matplotlib, OpenCV) are already in the stack.
"""
import importlib.util
import types

import numpy as np

#: aliases NumPy 2 removed that ``lvis`` 0.5.3 uses, mapped to what they meant
REMOVED_ALIASES = {'float': float}


class _NumpyWithAliases(types.ModuleType):
    """NumPy, plus the aliases in :data:`REMOVED_ALIASES`, for one module."""

    def __init__(self, numpy_module):
        super().__init__(numpy_module.__name__, numpy_module.__doc__)
        self.__dict__['_numpy'] = numpy_module
        for name, value in REMOVED_ALIASES.items():
            if not hasattr(numpy_module, name):
                self.__dict__[name] = value

    def __getattr__(self, name):
        return getattr(self._numpy, name)


def patch_lvis_numpy2() -> bool:
    """Let ``lvis.eval.LVISEval`` run under NumPy >= 1.24.

    Returns:
        bool: Whether the patch was applied (False: ``lvis`` absent, NumPy has
        the aliases, or already patched).
    """
    if all(hasattr(np, name) for name in REMOVED_ALIASES):
        return False
    try:
        if importlib.util.find_spec('lvis') is None:
            return False
    except (ImportError, ValueError):  # a broken or spec-less 'lvis' module
        return False
    import lvis.eval as lvis_eval
    current = getattr(lvis_eval, 'np', None)
    if isinstance(current, _NumpyWithAliases) or current is not np:
        return False
    lvis_eval.np = _NumpyWithAliases(np)
    return True
