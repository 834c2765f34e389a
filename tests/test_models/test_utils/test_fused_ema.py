import copy

import torch
import torch.nn as nn
from mmengine.model import ExponentialMovingAverage

from ccop_plugin.models.utils import FusedExponentialMovingAverage


def test_fused_ema_equals_mmengine_ema():
    torch.manual_seed(0)
    src = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(2, 2))
    ref = ExponentialMovingAverage(copy.deepcopy(src), momentum=0.01)
    fused = FusedExponentialMovingAverage(copy.deepcopy(src), momentum=0.01)
    for _ in range(4):
        for p in src.parameters():
            p.data.add_(torch.randn_like(p))
        src[1].running_mean.add_(1.)
        ref.update_parameters(src)
        fused.update_parameters(src)
    for (k, a), b in zip(ref.module.state_dict().items(),
                         fused.module.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert int(ref.steps) == int(fused.steps) == 4
