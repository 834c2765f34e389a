"""Per-pixel projection for point-level contrast (PLRC)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class DensePointNeck(BaseModule):
    """Per-pixel MLP (1x1 convs) on a feature map, then upsampling.

    PLRC: 2048-2048-128 on ResNet C5, 7x7 upsampled to 56x56 (``scale=8``).

    Args:
        in_channels (int): Input channels.
        hid_channels (int): Hidden channels.
        out_channels (int): Output channels.
        scale (int): Bilinear upsampling factor. Defaults to 8.
    """

    def __init__(self, in_channels: int, hid_channels: int,
                 out_channels: int, scale: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, out_channels, 1))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, Cin, h, w)`` -> ``(B, Cout, h*scale, w*scale)``."""
        x = self.mlp(x)
        if self.scale != 1:
            x = F.interpolate(x, scale_factor=self.scale, mode='bilinear',
                              align_corners=False)
        return x
