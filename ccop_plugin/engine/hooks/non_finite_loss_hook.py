"""Stop a run at the first non-finite loss, naming the stage and iteration.

A loss that turns NaN or infinite poisons the weights through the update of
that very iteration; training on from there only spreads NaN (a detector
fine-tuned on such weights scores nothing and the evaluation reports an
empty result, with exit status 0). :class:`NonFiniteLossHook` checks the
losses every iteration after the step and raises
:class:`NonFiniteLossError` -- one line: the stage (pre-training or
fine-tuning), the config's file name, the iteration (1-based, as the log
counts) and the non-finite terms -- before any later hook of that iteration
runs, so no checkpoint of the poisoned weights is written.

mmdet's ``CheckInvalidLossHook`` does not fit: it checks with ``assert``
(gone under ``python -O``), every 50 iterations by default, logs a line
without the iteration and is registered in mmdet's registry only.
"""
import math
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

# the runner's default scope -> the stage named in the message
STAGES = {'mmpretrain': 'pre-training', 'mmdet': 'fine-tuning'}


class NonFiniteLossError(RuntimeError):
    """A training loss was NaN or infinite; the message is one line."""


def _value(v) -> Optional[float]:
    if isinstance(v, torch.Tensor):
        return float(v.detach().float().mean()) if v.numel() else None
    if isinstance(v, (int, float)):
        return float(v)
    return None


def non_finite_terms(outputs: Dict) -> Dict[str, float]:
    """The loss terms of ``outputs`` (mmengine's ``train_step`` log
    variables) that are NaN or infinite: name -> value."""
    bad = {}
    for k, v in (outputs or {}).items():
        x = _value(v)
        if 'loss' in k and x is not None and not math.isfinite(x):
            bad[k] = x
    return bad


# mmengine's root registry: mmpretrain (pre-training) and mmdet
# (fine-tuning) configs both find it
@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` at the first iteration whose loss
    is NaN or infinite.

    Args:
        stage (str, optional): Name of the stage in the message; default:
            from the runner's default scope (``mmpretrain``:
            ``pre-training``, ``mmdet``: ``fine-tuning``, else
            ``training``).
        interval (int): Check every this many iterations (default 1: the
            check reads a loss the logger reads anyway).

    In a distributed run every rank takes part in one ``all_reduce`` of a
    flag per check, so all ranks stop at the same iteration (a rank that
    stopped alone would leave the others waiting in the next gradient
    all-reduce).
    """

    # before CheckpointHook (NORMAL) and LoggerHook (BELOW_NORMAL) of the
    # same iteration
    priority = 'VERY_HIGH'

    def __init__(self, stage: Optional[str] = None,
                 interval: int = 1) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.stage = stage
        self.interval = interval

    def _stage(self, runner) -> str:
        if self.stage:
            return self.stage
        scope = (runner.cfg.get('default_scope')
                 if runner.cfg is not None else None)
        return STAGES.get(scope, 'training')

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch=None, outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        bad = non_finite_terms(outputs)
        if get_world_size() > 1:
            flag = torch.tensor([float(bool(bad))],
                                device=_device(outputs))
            all_reduce(flag)
            if flag.item() > 0 and not bad:
                bad = {'loss on another rank': math.nan}
        if not bad:
            return
        config = getattr(runner.cfg, 'filename', None)
        name = f' ({osp.basename(config)})' if config else ''
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise NonFiniteLossError(
            f'{self._stage(runner)}{name} stopped at iteration '
            f'{runner.iter + 1}: non-finite loss ({terms}); the weights '
            'of this iteration are not saved (lower the learning rate, '
            'check the data and the initial weights)')


def _device(outputs) -> torch.device:
    for v in (outputs or {}).values():
        if isinstance(v, torch.Tensor):
            return v.device
    return torch.device('cpu')
