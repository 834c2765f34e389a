"""mmengine's Runner makes its config's ``default_scope`` the process-wide
current scope and leaves it there; a library call that runs a Runner puts
the caller's scope back, so that models built afterwards in the caller's
registry (e.g. mmpretrain's after an mmdet fine-tuning) still resolve."""
from contextlib import contextmanager


@contextmanager
def keep_default_scope():
    """Restore mmengine's ``DefaultScope`` instances on exit (mmengine has
    no public way to drop a scope instance; its manager dict is the one
    private name read here)."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    try:
        yield
    finally:
        DefaultScope._instance_dict.clear()
        DefaultScope._instance_dict.update(saved)
