"""PLRC's per-pixel prototype head (the released ``ProjHead``).

It gives the bottleneck features and prototype logits the distillation
head reads (:class:`~ccop_plugin.models.heads.PointDistillationHead`); it
owns no loss.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class PointPrototypeHead(BaseModule):
    """DINO-style projection head applied per pixel, as PLRC's ``ProjHead``.

    MLP (``num_layers`` linear layers, BN + ReLU between them) to a
    ``bottleneck`` feature ``z``, normalised (L2, or L1 for PLRC's key view),
    then ``num_prototypes`` logits from a weight-normalised linear layer (no
    bias; the released code fixes the weight-norm gain to 1, i.e. each
    prototype row has unit norm).

    Args:
        in_channels (int): Input dim (C5 channels). Defaults to 2048.
        hid_channels (int): Hidden dim. Defaults to 2048.
        bottleneck (int): Bottleneck dim. Defaults to 256.
        num_prototypes (int): Output dim. Defaults to 4096.
        num_layers (int): Linear layers of the MLP. Defaults to 3.
        use_bn (bool): BatchNorm after hidden layers. Defaults to True.
        scale (int): Bilinear upsampling factor of :meth:`forward_dense`.
            Defaults to 8 (7x7 -> 56x56).
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 bottleneck: int = 256, num_prototypes: int = 4096,
                 num_layers: int = 3, use_bn: bool = True, scale: int = 8,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if num_layers < 1:
            raise ValueError(f'num_layers must be >= 1, got {num_layers}')
        layers, dim = [], in_channels
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(dim, hid_channels))
            if use_bn:
                layers.append(nn.BatchNorm1d(hid_channels))
            layers.append(nn.ReLU(inplace=True))
            dim = hid_channels
        layers.append(nn.Linear(dim, bottleneck))
        self.mlp = nn.Sequential(*layers)
        self.prototypes = nn.Linear(bottleneck, num_prototypes, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor, p: int = 2):
        """``(N, C)`` -> ``z`` ``(N, bottleneck)`` (Lp-normalised) and
        ``(N, num_prototypes)`` logits."""
        z = F.normalize(self.mlp(x), dim=-1, p=p)
        w = F.normalize(self.prototypes.weight, dim=1)
        return z, F.linear(z, w)

    def forward_dense(self, x: torch.Tensor, p: int = 2):
        """Per pixel on ``(B, C, h, w)``; both outputs upsampled by ``scale``.

        Returns:
            tuple: ``z`` ``(B, bottleneck, h*s, w*s)`` and logits
            ``(B, num_prototypes, h*s, w*s)``.
        """
        B, C, h, w = x.shape
        z, logits = self(x.permute(0, 2, 3, 1).reshape(-1, C), p=p)
        z = z.reshape(B, h, w, -1).permute(0, 3, 1, 2)
        logits = logits.reshape(B, h, w, -1).permute(0, 3, 1, 2)
        if self.scale != 1:
            size = (h * self.scale, w * self.scale)
            z = F.interpolate(z, size=size, mode='bilinear',
                              align_corners=False)
            logits = F.interpolate(logits, size=size, mode='bilinear',
                                   align_corners=False)
        return z, logits
