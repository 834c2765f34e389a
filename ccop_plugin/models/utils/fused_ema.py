"""Momentum (EMA) key encoder updated with multi-tensor kernels."""
import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage


class FusedExponentialMovingAverage(ExponentialMovingAverage):
    """mmengine's ``ExponentialMovingAverage`` with ``torch._foreach`` ops.

    Same arithmetic (``avg = avg + momentum * (src - avg)``, buffers copied
    from the source model when ``update_buffers=False``), but one
    multi-tensor kernel per step instead of one ``lerp_`` per parameter, which
    matters on GPUs where the per-parameter loop is launch-bound (a key
    encoder has hundreds of tensors).

    Args: see :class:`mmengine.model.ExponentialMovingAverage`
    (``momentum`` is the weight of the new parameters, so 0.001 == the
    papers' 0.999).
    """

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        if (self.update_buffers or self.steps == 0
                or self.steps % self.interval != 0):
            return super().update_parameters(model)
        src = dict(model.named_parameters())
        avg, new = [], []
        for k, p_avg in self.avg_parameters.items():
            if p_avg.dtype.is_floating_point:
                avg.append(p_avg.data)
                new.append(src[k].data.to(p_avg.device))
        torch._foreach_lerp_(avg, new, self.momentum)
        b_avg = [b.data for b in self.module.buffers()]
        b_src = [b.data.to(d.device) for b, d in zip(model.buffers(), b_avg)]
        if b_avg:
            torch._foreach_copy_(b_avg, b_src)
        self.steps += 1
