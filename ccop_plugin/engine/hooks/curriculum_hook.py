"""Schedule of CCOP's spatial-noise curriculum.

:class:`CurriculumHook` sets, before every training iteration, the current IoU
threshold and jitter magnitudes of the model's
:class:`~ccop_plugin.models.utils.BoxJitterCurriculum`::

    value = start + f(t) * (end - start),   t = min(iter / total_iters, 1)

with ``f`` linear (default, as the reference), cosine
(``(1 - cos(pi t)) / 2``) or step (fraction of ``milestones`` passed, given
as fractions of training). ``start``/``end`` come from the model's curriculum
(paper: IoU 0.8 -> 0.4, mag_xy 0.15 -> 0.6, mag_wh 0.35 -> 1.4) unless given
here. The values are logged as ``train/curriculum_<name>`` scalars and saved in
the checkpoint under ``checkpoint['curriculum']`` (for reading; they are model
buffers too, and on resume :meth:`CurriculumHook.before_train` recomputes them
from ``runner.iter``).
"""
import math
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

from ccop_plugin.engine.model_wrappers import unwrap_model

DATA_BATCH = Optional[dict]


@HOOKS.register_module()
class CurriculumHook(Hook):
    """Drive the spatial-noise curriculum of CCOP.

    Args:
        schedule (str): ``'linear'``, ``'cosine'`` or ``'step'``.
            Defaults to ``'linear'``.
        total_iters (int, optional): Iterations over which the values move
            from start to end. Defaults to ``runner.max_iters``.
        milestones (Sequence[float]): For ``'step'``: fractions of
            ``total_iters`` at which the values jump by an equal share.
            Defaults to (0.5, ).
        iou_thr (Sequence[float], optional): (start, end) override.
        mag_xy (Sequence[float], optional): (start, end) override.
        mag_wh (Sequence[float], optional): (start, end) override.
        curriculum_attr (str): Attribute of the model holding the curriculum.
            Defaults to ``'curriculum'``.
    """

    priority = 'NORMAL'
    SCHEDULES = ('linear', 'cosine', 'step')

    def __init__(self,
                 schedule: str = 'linear',
                 total_iters: Optional[int] = None,
                 milestones: Sequence[float] = (0.5, ),
                 iou_thr: Optional[Sequence[float]] = None,
                 mag_xy: Optional[Sequence[float]] = None,
                 mag_wh: Optional[Sequence[float]] = None,
                 curriculum_attr: str = 'curriculum') -> None:
        if schedule not in self.SCHEDULES:
            raise ValueError(f'schedule must be one of {self.SCHEDULES}, '
                             f'got {schedule!r}')
        self.schedule = schedule
        self.total_iters = total_iters
        self.milestones = sorted(float(m) for m in milestones)
        self.overrides = {
            k: tuple(v)
            for k, v in dict(iou_thr=iou_thr, mag_xy=mag_xy,
                             mag_wh=mag_wh).items() if v is not None
        }
        self.curriculum_attr = curriculum_attr
        self.values: dict = {}

    def _curriculum(self, runner):
        model = unwrap_model(runner.model)
        if not hasattr(model, self.curriculum_attr):
            raise AttributeError(
                f'CurriculumHook: model {type(model).__name__} has no '
                f'`{self.curriculum_attr}` (a BoxJitterCurriculum)')
        return getattr(model, self.curriculum_attr)

    def factor(self, cur_iter: int, total_iters: int) -> float:
        """Schedule factor in [0, 1] at ``cur_iter``."""
        t = min(max(cur_iter / max(total_iters, 1), 0.), 1.)
        if self.schedule == 'linear':
            return t
        if self.schedule == 'cosine':
            return 0.5 * (1. - math.cos(math.pi * t))
        if not self.milestones:
            return 0.
        return sum(t >= m for m in self.milestones) / len(self.milestones)

    def compute_values(self, curriculum, cur_iter: int,
                       total_iters: int) -> dict:
        """Current values of every curriculum parameter."""
        f = self.factor(cur_iter, total_iters)
        ranges = dict(curriculum.ranges)
        ranges.update(self.overrides)
        return {k: r[0] + f * (r[1] - r[0]) for k, r in ranges.items()}

    def _update(self, runner) -> None:
        curriculum = self._curriculum(runner)
        if curriculum is None:  # a model without one (``curriculum=None``)
            return
        total = self.total_iters or runner.max_iters
        self.values = self.compute_values(curriculum, runner.iter, total)
        curriculum.set_values(**self.values)
        for name, value in self.values.items():
            runner.message_hub.update_scalar(f'train/curriculum_{name}',
                                             value)

    def before_train(self, runner) -> None:
        """Set the values for the (possibly resumed) start iteration."""
        self._update(runner)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: DATA_BATCH = None) -> None:
        """Set the values of this iteration."""
        self._update(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the schedule state in the checkpoint.

        ``iter`` is the (0-based) iteration the stored values were used for;
        checkpoints are written at the end of that iteration.
        """
        curriculum = self._curriculum(runner)
        if curriculum is None:
            return
        checkpoint['curriculum'] = dict(
            values=dict(curriculum.get_values()),
            iter=runner.iter,
            schedule=self.schedule)

