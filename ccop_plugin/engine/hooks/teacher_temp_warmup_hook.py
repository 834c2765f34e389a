"""Teacher-temperature warm-up of a distillation head (PLRC)."""
from typing import Optional

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ccop_plugin.engine.model_wrappers import unwrap_model

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class TeacherTempWarmupHook(Hook):
    """Set ``model.<head>.teacher_temp`` from ``runner.iter``.

    As mmpretrain's DINO project (``DINOTeacherTempWarmupHook``), by
    iteration: before iteration ``t`` the teacher temperature is
    ``start + (end - start) * min(t / warmup_iters, 1)`` (``end`` from the
    start when ``warmup_iters <= 0``). The value is a plain attribute of the
    head, recomputed every iteration, so a resumed run continues exactly.

    Args:
        start (float): Teacher temperature at iteration 0. Defaults to 0.04.
        end (float): Temperature after the warm-up. Defaults to 0.07.
        warmup_iters (int): Iterations of the linear warm-up.
            Defaults to 0.
        head (str): Attribute of the model holding the head (a
            ``PointDistillationHead``). Defaults to ``'distill_head'``.
    """

    priority = 'NORMAL'

    def __init__(self,
                 start: float = 0.04,
                 end: float = 0.07,
                 warmup_iters: int = 0,
                 head: str = 'distill_head') -> None:
        self.start = start
        self.end = end
        self.warmup_iters = warmup_iters
        self.head = head

    def value(self, cur_iter: int) -> float:
        """Teacher temperature of iteration ``cur_iter``."""
        if self.warmup_iters <= 0:
            return self.end
        return self.start + (self.end - self.start) * min(
            float(cur_iter) / self.warmup_iters, 1.)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        model = unwrap_model(runner.model)
        if not hasattr(model, self.head):
            raise AttributeError(
                f'TeacherTempWarmupHook: model {type(model).__name__} has '
                f'no `{self.head}` (set the hook\'s head=...)')
        getattr(model, self.head).teacher_temp = self.value(runner.iter)
        runner.message_hub.update_scalar('train/teacher_temp',
                                         getattr(model, self.head)
                                         .teacher_temp)
