"""RoI neck of CCOP: level-assigned RoIAlign on FPN features + MLP.

Level assignment (reference ``assign_boxes_to_levels_soco`` with
``soco_assign_sizes=(224, 192, 96, 48)``): with ``s = sqrt(box area)`` in view
pixels, a box goes to

* P2 if ``s <= 48``, P3 if ``48 < s <= 96``, P4 if ``96 < s <= 192``,
  P5 if ``192 < s <= 224``.

Here the thresholds are written ascending, one upper bound per level:
``assign_sizes=(48, 96, 192, 224)``. A box with ``s > 224`` cannot occur with
the paper's 224-px views (boxes are clipped to the view); the reference would
send it to P2 (its assignment starts from level 0), which we keep available as
``oversize_level=0``; by default (``oversize_level=-1``) it goes to the
coarsest level, P5.

Each RoI is pooled by ``torchvision.ops.roi_align`` through the package's
one RoI pooling (:func:`~ccop_plugin.models.utils.rois.roi_align_level`;
``aligned=True`` as Detectron2's ``ROIAlignV2``, ``sampling_ratio=0`` as the
reference) to 7x7, flattened (256 * 49 = 12544) and projected by an MLP
12544-2048-128 (fc-[dropout]-relu-fc). The reference ``LinearNormNeck`` has a
dropout of 0.1 after the first fc (``dropout=0.1`` reproduces it). L2
normalisation is done by the algorithm.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.rois import roi_align_level


@MODELS.register_module()
class ObjectRoINeck(BaseModule):
    """RoIAlign from the size-assigned FPN level, then an MLP.

    Args:
        in_channels (int): FPN channels. Defaults to 256.
        hid_channels (int): Hidden MLP width. Defaults to 2048.
        out_channels (int): Embedding dimension. Defaults to 128.
        roi_size (int): RoIAlign output size. Defaults to 7.
        featmap_strides (Sequence[int]): Strides of the FPN levels used,
            finest first. Defaults to (4, 8, 16, 32) (P2-P5).
        assign_sizes (Sequence[float]): Upper bound of ``sqrt(area)`` for each
            level, ascending. Defaults to (48, 96, 192, 224).
        oversize_level (int): Level index for boxes larger than the last
            bound. ``-1`` (default) is the coarsest level; ``0`` is the
            reference behaviour.
        sampling_ratio (int): RoIAlign sampling ratio. Defaults to 0.
        aligned (bool): RoIAlign half-pixel alignment. Defaults to True.
        dropout (float): Dropout after the first fc. Defaults to 0.
        init_cfg (dict or list[dict], optional): Defaults to normal(std=0.01)
            fc weights and zero biases as the reference ``init_weights``.
    """

    def __init__(self,
                 in_channels: int = 256,
                 hid_channels: int = 2048,
                 out_channels: int = 128,
                 roi_size: int = 7,
                 featmap_strides: Sequence[int] = (4, 8, 16, 32),
                 assign_sizes: Sequence[float] = (48, 96, 192, 224),
                 oversize_level: int = -1,
                 sampling_ratio: int = 0,
                 aligned: bool = True,
                 dropout: float = 0.,
                 init_cfg: Optional[Union[dict, List[dict]]] = dict(
                     type='Normal', std=0.01, bias=0., layer='Linear')
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(assign_sizes) != len(featmap_strides):
            raise ValueError('assign_sizes needs one bound per level: got '
                             f'{len(assign_sizes)} sizes for '
                             f'{len(featmap_strides)} strides')
        if list(assign_sizes) != sorted(assign_sizes):
            raise ValueError(f'assign_sizes must be ascending, got '
                             f'{assign_sizes}')
        self.in_channels = in_channels
        self.roi_size = roi_size
        self.featmap_strides = tuple(featmap_strides)
        self.assign_sizes = tuple(float(s) for s in assign_sizes)
        self.oversize_level = oversize_level % len(featmap_strides)
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        layers = [nn.Linear(in_channels * roi_size * roi_size, hid_channels)]
        if dropout > 0:
            layers.append(nn.Dropout(p=dropout))
        layers += [
            nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels)
        ]
        self.mlp = nn.Sequential(*layers)

    def assign_levels(self, rois: torch.Tensor) -> torch.Tensor:
        """FPN level index of each RoI.

        Args:
            rois (torch.Tensor): ``(K, 5)`` (batch index, x1, y1, x2, y2) or
                ``(K, 4)`` boxes.

        Returns:
            torch.Tensor: ``(K,)`` long, 0 = finest level (P2).
        """
        boxes = rois[:, -4:]
        wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)
        scale = torch.sqrt(wh[:, 0] * wh[:, 1])
        bounds = scale.new_tensor(self.assign_sizes)
        # number of bounds strictly below the scale == first level whose
        # bound is >= scale, i.e. s <= bound_l and s > bound_{l-1}
        levels = torch.searchsorted(bounds, scale.contiguous(), right=False)
        levels[levels >= len(self.assign_sizes)] = self.oversize_level
        return levels

    def pool(self, feats: Sequence[torch.Tensor],
             rois: torch.Tensor) -> torch.Tensor:
        """RoIAlign every RoI from its level: ``(K, C, S, S)``."""
        num_levels = len(self.featmap_strides)
        if len(feats) < num_levels:
            raise ValueError(f'ObjectRoINeck needs {num_levels} feature '
                             f'levels, got {len(feats)}')
        feats = feats[:num_levels]
        if rois.shape[0] == 0:
            return feats[0].new_zeros((0, feats[0].shape[1], self.roi_size,
                                       self.roi_size))
        rois = rois.float()  # see roi_align_level: boxes stay float32
        levels = self.assign_levels(rois)
        dtype = feats[0].dtype
        chunks, order, unused = [], [], []
        for lvl, (feat, stride) in enumerate(zip(feats, self.featmap_strides)):
            inds = torch.nonzero(levels == lvl, as_tuple=True)[0]
            if inds.numel() == 0:
                # keep every level in the graph (DDP needs each param used);
                # one element only: a half-precision sum could overflow
                unused.append(feat.reshape(-1)[:1].sum().to(dtype) * 0.)
                continue
            chunks.append(roi_align_level(
                feat, rois[inds], stride, self.roi_size, self.sampling_ratio,
                self.aligned).to(dtype))
            order.append(inds)
        if unused:
            chunks[0] = chunks[0] + sum(unused)
        # one gather back to the RoIs' order (the same values as writing
        # each level into a zero tensor, without a copy of it per level)
        out = torch.cat(chunks)
        order = torch.cat(order)
        if len(chunks) == 1:  # every RoI on one level, in order already
            return out
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=order.device)
        return out[inverse]

    def forward(self, feats: Sequence[torch.Tensor],
                rois: torch.Tensor) -> torch.Tensor:
        """Embed RoIs.

        Args:
            feats (Sequence[torch.Tensor]): FPN levels, each ``(B, C, H, W)``.
            rois (torch.Tensor): ``(K, 5)`` RoIs in input-image pixels; ``K``
                may be 0.

        Returns:
            torch.Tensor: ``(K, out_channels)`` (not normalised).
        """
        pooled = self.pool(feats, rois)
        return self.mlp(pooled.flatten(1))
