"""MCL's projector (a neck): per-cell conv stack, cell pooling, MLP."""
from typing import List, Optional, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


def bn_mlp(in_channels: int, hid_channels: int, out_channels: int,
           last_bn: bool = False) -> nn.Sequential:
    """``Linear-BN-ReLU-Linear`` [``-BN`` without affine] (MCL's MLPs)."""
    layers = [nn.Linear(in_channels, hid_channels),
              nn.BatchNorm1d(hid_channels), nn.ReLU(inplace=True),
              nn.Linear(hid_channels, out_channels)]
    if last_bn:
        layers.append(nn.BatchNorm1d(out_channels, affine=False))
    return nn.Sequential(*layers)


@MODELS.register_module()
class MCLProjector(BaseModule):
    """MCL's neck: per-cell conv stack, cell pooling, MLP.

    `Multi-Level Contrastive Learning for Dense Prediction Task
    <https://arxiv.org/abs/2304.02010>`_ (reference code GuoQiushan/MCL,
    ``DetConvGpNonLinearHead``). Every FPN map is cut into ``grid`` x
    ``grid`` cells (one cell = one sub-image of the montage); each cell goes
    separately (zero padding at the cell border, no mixing across
    sub-images) through ``num_convs`` conv3x3-BN-ReLU, is averaged, and
    embedded by an MLP ``in_channels-hid_channels-out_channels`` ending in
    a non-affine BatchNorm1d (``last_bn``). The MLP's Linear layers start
    Kaiming (fan-in, ReLU) with zero biases, as released; the conv stack
    keeps ``ConvModule``'s Kaiming init.

    Args:
        in_channels (int): FPN channels.
        hid_channels (int): Hidden MLP width.
        out_channels (int): Embedding dimension.
        num_convs (int): Conv3x3-BN-ReLU per cell. Defaults to 4.
        last_bn (bool): Non-affine BatchNorm1d at the end. Defaults to True.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int,
                 num_convs: int = 4,
                 last_bn: bool = True,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.convs = nn.Sequential(*[
            ConvModule(in_channels, in_channels, 3, padding=1,
                       norm_cfg=dict(type='BN'))
            for _ in range(num_convs)
        ])
        self.mlp = bn_mlp(in_channels, hid_channels, out_channels, last_bn)
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode='fan_in',
                                        nonlinearity='relu')
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        """``(G, C, h, w)`` -> ``(G * grid**2, out)`` in raster cell order."""
        G, C, h, w = x.shape
        if h % grid or w % grid:
            raise ValueError(f'feature map {h}x{w} not divisible into '
                             f'{grid}x{grid} cells')
        a, b = h // grid, w // grid
        cells = x.view(G, C, grid, a, grid, b).permute(0, 2, 4, 1, 3, 5)
        cells = cells.reshape(G * grid * grid, C, a, b)
        return self.mlp(self.convs(cells).mean(dim=(2, 3)))
