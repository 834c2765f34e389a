"""MCL: multi-level contrastive learning with montage canvases."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.dist import get_rank
from mmengine.logging import MessageHub

from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.models.utils import CosineEMA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..utils.dist_utils import all_gather_variable
from ..utils.montage import montage


def _mlp(in_c: int, hid: int, out: int,
         last_bn: bool = False) -> nn.Sequential:
    layers = [nn.Linear(in_c, hid), nn.BatchNorm1d(hid),
              nn.ReLU(inplace=True), nn.Linear(hid, out)]
    if last_bn:
        layers.append(nn.BatchNorm1d(out, affine=False))
    return nn.Sequential(*layers)


class MCLProjector(nn.Module):
    """MCL's neck: per-cell conv stack, cell pooling, MLP.

    Every FPN map is cut into ``grid`` x ``grid`` cells (one cell = one
    sub-image of the montage); each cell goes separately (zero padding at
    the cell border, no mixing across sub-images) through ``num_convs``
    conv3x3-BN-ReLU, is averaged, and embedded by an MLP
    ``channels-hid-out`` ending in a non-affine BatchNorm1d (``last_bn``),
    as ``DetConvGpNonLinearHead`` of the released code.
    """

    def __init__(self, channels: int, hid: int, out: int,
                 num_convs: int = 4, last_bn: bool = True) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[
            ConvModule(channels, channels, 3, padding=1,
                       norm_cfg=dict(type='BN'))
            for _ in range(num_convs)
        ])
        self.mlp = _mlp(channels, hid, out, last_bn)

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


@MODELS.register_module()
class MCL(BaseSelfSupervisor):
    """MCL.

    Implementation of "Multi-Level Contrastive Learning for Dense Prediction
    Task" (reference code GuoQiushan/MCL, ``openselfsup/models/mcl.py``). Montage levels on square
    canvases of the view size ``S``: the plain view, then 2x2, 4x4, 8x8
    nearest-downsampled sub-images drawn from the batch
    (``randperm(cells * G) mod B``, built on the device by :func:`montage`).
    Each level of each side is cut from its own augmented view when the
    pipeline provides ``2 * num_levels`` views. All canvases of one side go
    through the backbone + FPN in one batch; level ``l`` is read from FPN
    output ``3 - l`` (P5..P2) so one sub-image fills one ``S/32`` cell; a
    per-cell conv stack, cell pooling and an MLP (shared) embed every
    sub-image, then a per-level predictor. Each sub-image is contrasted
    (InfoNCE on cosine logits, temperature ``T``, scaled by ``2 T``)
    against the momentum encoder's P5 embedding of the other side's plain
    view of its source; negatives: all plain images of the global batch.
    Both directions are summed; level weights ``(1/2, 1/4, 1/8, 1/8)``.
    The momentum encoder is a :class:`CosineEMA` (0.99 -> 1 over training,
    as the released ``BYOLHook``).

    Args:
        backbone (dict): ResNet, ``out_indices=(0, 1, 2, 3)``.
        neck (dict): ``mmdet.FPN`` with 4 outputs (P2-P5).
        head (dict, optional): Unused (kept for the base class).
        grids (Sequence[int]): Sub-images per side per level.
            Defaults to (1, 2, 4, 8).
        level_weights (Sequence[float]): Defaults to (0.5, 0.25, .125, .125).
        canvas_ratios (Sequence[float]): Canvases of level ``l`` per image of
            the per-GPU batch ``B``: ``max(1, int(B * r))`` canvases (the
            released ``batch_sizes = [B, B/4, B/16, B/32]``; with
            ``B = 128`` the 8x8 level shows every image twice). The first
            level must be the plain view (grid 1, ratio 1).
            Defaults to (1, 1/4, 1/16, 1/32).
        fpn_channels (int): Defaults to 256.
        hid_channels (int): Defaults to 2048.
        out_channels (int): Defaults to 256.
        num_convs (int): Defaults to 4.
        temperature (float): Released config ``T=1.0``. Defaults to 1.0.
        momentum (float): Start momentum, mmengine convention (weight of the
            online parameters). Defaults to 0.01 (paper EMA 0.99).
        end_momentum (float): Defaults to 0. (EMA 1).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: Optional[dict] = None,
                 grids: Sequence[int] = (1, 2, 4, 8),
                 level_weights: Sequence[float] = (0.5, 0.25, 0.125, 0.125),
                 canvas_ratios: Sequence[float] = (1., 1 / 4, 1 / 16,
                                                   1 / 32),
                 fpn_channels: int = 256,
                 hid_channels: int = 2048,
                 out_channels: int = 256,
                 num_convs: int = 4,
                 temperature: float = 1.0,
                 momentum: float = 0.01,
                 end_momentum: float = 0.,
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
        if not (len(grids) == len(level_weights) == len(canvas_ratios)
                and 1 <= len(grids) <= 4):
            raise ValueError('grids, level_weights, canvas_ratios: same '
                             'length, 1 to 4 levels')
        if grids[0] != 1 or canvas_ratios[0] != 1:
            raise ValueError('the first MCL level must be the plain view '
                             '(grid 1, canvas ratio 1): it gives the keys')
        self.grids = tuple(grids)
        self.level_weights = tuple(level_weights)
        self.canvas_ratios = tuple(canvas_ratios)
        self.temperature = temperature
        self.projector = MCLProjector(fpn_channels, hid_channels,
                                      out_channels, num_convs)
        self.predictors = nn.ModuleList(
            [_mlp(out_channels, hid_channels, out_channels) for _ in grids])
        self._init_linears()
        self.encoder_k = CosineEMA(
            nn.Sequential(self.backbone, self.neck, self.projector),
            momentum=momentum,
            end_momentum=end_momentum)

    def _init_linears(self) -> None:
        """Released init: projector Linear layers Kaiming (fan-in, ReLU),
        predictor Linear layers N(0, 0.01); biases 0 (the conv stack keeps
        ConvModule's Kaiming init)."""
        for m in self.projector.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode='fan_in',
                                        nonlinearity='relu')
                nn.init.zeros_(m.bias)
        for m in self.predictors.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def _split_views(self, inputs: List[torch.Tensor]
                     ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per-level views of both sides.

        ``2 * L`` views (pipeline ``MultiView(num_views=[L, L])``, the
        released ``img_pyramid_pipe_idxs_1/2 = [0..L-1] / [L..2L-1]``):
        level ``l`` of side A uses view ``l``, of side B view ``L + l``.
        Two views: every level of a side uses that side's only view.
        """
        L = len(self.grids)
        if len(inputs) == 2 * L:
            return list(inputs[:L]), list(inputs[L:])
        if len(inputs) == 2:
            return [inputs[0]] * L, [inputs[1]] * L
        raise ValueError(f'MCL needs 2 or 2 * num_levels = {2 * L} views, '
                         f'got {len(inputs)}')

    def _pyramid(self, views: List[torch.Tensor]
                 ) -> Tuple[torch.Tensor, List[int], List[torch.Tensor]]:
        """Canvases of all levels of one side, concatenated.

        Returns:
            tuple: canvases ``(sum_l G_l, 3, S, S)``; ``G_l`` per level; the
            source batch index of every cell per level ``(G_l * g_l**2,)``
            (level 0: ``arange(B)``).
        """
        B = views[0].shape[0]
        canvases, counts, srcs = [], [], []
        for view, g, r in zip(views, self.grids, self.canvas_ratios):
            if g == 1 and r == 1:
                canvas = view
                src = torch.arange(B, device=view.device)
            else:
                canvas, _, src = montage(
                    view, g, num_canvases=max(1, int(B * r)))
            canvases.append(canvas)
            counts.append(canvas.shape[0])
            srcs.append(src.reshape(-1))
        return torch.cat(canvases), counts, srcs

    def _side_loss(self, canvas: torch.Tensor, counts: List[int],
                   srcs: List[torch.Tensor], keys_all: torch.Tensor,
                   rank_offset: int) -> List[torch.Tensor]:
        feats = self.neck(self.backbone(canvas))
        losses, start = [], 0
        for lvl, (g, w, n) in enumerate(
                zip(self.grids, self.level_weights, counts)):
            z = self.projector(feats[3 - lvl][start:start + n], g)
            start += n
            q = F.normalize(self.predictors[lvl](z), dim=1)
            logits = q @ keys_all.t() / self.temperature
            labels = srcs[lvl] + rank_offset
            losses.append(
                F.cross_entropy(logits, labels) * (2 * self.temperature) * w)
        return losses

    def _embed_keys(self, canvas: torch.Tensor, num: int) -> torch.Tensor:
        # the released code runs the momentum encoder on the whole canvas
        # batch (BN statistics included) and keeps P5 of the plain views
        backbone_k, neck_k, proj_k = self.encoder_k.module
        p5 = neck_k(backbone_k(canvas))[3]
        return F.normalize(proj_k(p5, 1)[:num], dim=1)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Forward in training.

        Args:
            inputs (List[torch.Tensor]): ``2`` or ``2 * num_levels`` views
                ``(B, 3, S, S)`` (see :meth:`_split_views`); ``S`` a
                multiple of 32 (224 in the paper, 64 in the tiny config) so
                that every sub-image fills an ``S/32`` cell of its level.
            data_samples (List[DataSample]): Unused.

        Returns:
            Dict[str, torch.Tensor]: ``loss_l0`` .. one per level (weighted,
            summed over both directions).
        """
        assert isinstance(inputs, list)
        views_a, views_b = self._split_views(inputs)
        B = views_a[0].shape[0]
        canvas_a, counts_a, srcs_a = self._pyramid(views_a)
        canvas_b, counts_b, srcs_b = self._pyramid(views_b)
        if (int(self.encoder_k.steps) > 0 and MessageHub.get_current_instance()
                .get_info('max_iters') is None):
            raise RuntimeError(
                'MCL: the CosineEMA momentum schedule reads max_iters from '
                'the MessageHub (set by the runner\'s RuntimeInfoHook); '
                'outside a runner call MessageHub.get_current_instance()'
                '.update_info("max_iters", N) first')
        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.projector))
            ka_all = all_gather_variable(self._embed_keys(canvas_a, B))
            kb_all = all_gather_variable(self._embed_keys(canvas_b, B))
        # assumes equal per-rank batch (DistributedSampler default)
        off = get_rank() * B
        a = self._side_loss(canvas_a, counts_a, srcs_a, kb_all, off)
        b = self._side_loss(canvas_b, counts_b, srcs_b, ka_all, off)
        return {f'loss_l{i}': la + lb for i, (la, lb) in enumerate(zip(a, b))}
