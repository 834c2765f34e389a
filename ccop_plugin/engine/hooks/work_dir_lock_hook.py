"""Hold the work dir for the whole run when mmengine's Runner is built by
someone else (``mim train``, mmpretrain's or mmdet's ``tools/train.py``)."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..work_dir import lock_work_dir, work_dir_lock_held


# mmengine's root registry: mmpretrain (pre-training) and mmdet
# (fine-tuning) configs both find it
@HOOKS.register_module()
class WorkDirLockHook(Hook):
    """Take :func:`~ccop_plugin.engine.work_dir.lock_work_dir` on the
    runner's work dir before the run (first of all ``before_run`` hooks)
    and give it back after it.

    A second run in the same work dir stops with
    :class:`~ccop_plugin.utils.folder_lock.FolderInUseError` naming the
    holder before it trains or saves anything. ``tools/train.py`` takes the
    lock itself before building the Runner (so its refusal is one line); the
    hook then finds that lock (re-entrant in a process) and leaves it.
    """

    priority = 'VERY_HIGHEST'

    def __init__(self) -> None:
        self._lock = None
        self._took = False

    def before_run(self, runner) -> None:
        took = not work_dir_lock_held(runner.work_dir)
        self._lock = lock_work_dir(runner.work_dir)
        self._took = took and self._lock is not None

    def after_run(self, runner) -> None:
        if self._lock is not None and self._took:
            self._lock.close()
        self._lock, self._took = None, False
