"""MCL: multi-level contrastive learning with montage canvases."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage

from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..utils.dist_utils import all_gather_variable
from ..utils.montage import montage


def _mlp(in_c: int, hid: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_c, hid), nn.BatchNorm1d(hid), nn.ReLU(inplace=True),
        nn.Linear(hid, out))


class MCLProjector(nn.Module):
    """Shared conv stack + cell pooling + MLP (MCL's neck).

    ``num_convs`` conv3x3-BN-ReLU on the FPN level, average pooling of each
    ``grid`` x ``grid`` cell, MLP ``channels-hid-out``.
    """

    def __init__(self, channels: int, hid: int, out: int,
                 num_convs: int = 4) -> None:
        super().__init__()
        layers = []
        for _ in range(num_convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1,
                                 bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.mlp = _mlp(channels, hid, out)

    def forward(self, x: torch.Tensor, grid: int) -> torch.Tensor:
        """``(G, C, h, w)`` -> ``(G * grid**2, out)`` in raster cell order."""
        x = F.adaptive_avg_pool2d(self.convs(x), grid)  # (G, C, g, g)
        x = x.flatten(2).transpose(1, 2).reshape(-1, x.shape[1])
        return self.mlp(x)


@MODELS.register_module()
class MCL(BaseSelfSupervisor):
    """MCL.

    Multi-level contrastive learning for dense prediction (reference code
    GuoQiushan/MCL). Montage levels on square canvases of the view size
    ``S``: the plain view, 2x2, 4x4, 8x8 nearest-downsampled sub-images drawn
    from the batch (a random permutation per level, built on the device by
    :func:`montage`). Level ``l`` is read from FPN output ``3 - l`` (P5..P2)
    so one sub-image fills one ``S/32`` cell; a shared conv stack, per-cell
    average pooling and an MLP embed every sub-image, then a per-level
    predictor. Each sub-image is contrasted (InfoNCE, T ``temperature``)
    against the momentum encoder's embedding (P5, same conv stack + MLP) of
    the other view's full image of its source; negatives: all key images of
    the global batch. Symmetric over the two views; level weights
    ``(1/2, 1/4, 1/8, 1/8)``.

    Args:
        backbone (dict): ResNet, ``out_indices=(0, 1, 2, 3)``.
        neck (dict): ``mmdet.FPN`` with 4 outputs (P2-P5).
        head (dict, optional): Unused (kept for the base class).
        grids (Sequence[int]): Sub-images per side per level.
            Defaults to (1, 2, 4, 8).
        level_weights (Sequence[float]): Defaults to (0.5, 0.25, .125, .125).
        fpn_channels (int): Defaults to 256.
        hid_channels (int): Defaults to 2048.
        out_channels (int): Defaults to 256.
        num_convs (int): Defaults to 4.
        temperature (float): Defaults to 0.2.
        momentum (float): mmengine EMA momentum. Defaults to 0.01 (0.99).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: Optional[dict] = None,
                 grids: Sequence[int] = (1, 2, 4, 8),
                 level_weights: Sequence[float] = (0.5, 0.25, 0.125, 0.125),
                 fpn_channels: int = 256,
                 hid_channels: int = 2048,
                 out_channels: int = 256,
                 num_convs: int = 4,
                 temperature: float = 0.2,
                 momentum: float = 0.01,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if len(grids) != len(level_weights) or len(grids) > 4:
            raise ValueError('grids and level_weights: same length, <= 4')
        self.grids = tuple(grids)
        self.level_weights = tuple(level_weights)
        self.temperature = temperature
        self.projector = MCLProjector(fpn_channels, hid_channels,
                                      out_channels, num_convs)
        self.predictors = nn.ModuleList(
            [_mlp(out_channels, hid_channels, out_channels) for _ in grids])
        self.encoder_k = ExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck, self.projector),
            momentum)

    def _embed_keys(self, img: torch.Tensor) -> torch.Tensor:
        backbone_k, neck_k, proj_k = self.encoder_k.module
        p5 = neck_k(backbone_k(img))[3]
        return F.normalize(proj_k(p5, 1), dim=1)

    def _level_loss(self, view: torch.Tensor, keys_all: torch.Tensor,
                    rank_offset: int) -> Dict[str, torch.Tensor]:
        out = {}
        for lvl, (g, w) in enumerate(zip(self.grids, self.level_weights)):
            canvas, _, src = montage(view, g)
            feats = self.neck(self.backbone(canvas))
            z = self.projector(feats[3 - lvl], g)
            q = F.normalize(self.predictors[lvl](z), dim=1)
            logits = q @ keys_all.t() / self.temperature
            labels = src.reshape(-1) + rank_offset
            out[f'loss_l{lvl}'] = F.cross_entropy(logits, labels) * w
        return out

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Forward in training.

        Args:
            inputs (List[torch.Tensor]): Two views ``(B, 3, S, S)``; ``S``
                a multiple of 32 (224 in the paper, 64 in the tiny config)
                so that every sub-image fills an ``S/32`` cell of its level.
            data_samples (List[DataSample]): Unused.

        Returns:
            Dict[str, torch.Tensor]: ``loss_l0`` .. one per level (weighted,
            summed over both directions).
        """
        assert isinstance(inputs, list) and len(inputs) >= 2
        v0, v1 = inputs[0], inputs[1]
        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.projector))
            k0, k1 = self._embed_keys(v0), self._embed_keys(v1)
            k0_all, k1_all = all_gather_variable(k0), all_gather_variable(k1)
        rank = torch.distributed.get_rank() if (
            torch.distributed.is_available()
            and torch.distributed.is_initialized()) else 0
        # assumes equal per-rank batch (DistributedSampler default)
        off = rank * v0.shape[0]
        a = self._level_loss(v0, k1_all, off)
        b = self._level_loss(v1, k0_all, off)
        return {k: (a[k] + b[k]) / 2 for k in a}
