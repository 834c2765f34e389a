"""MCL's head: per-level predictors and the multi-level InfoNCE."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..necks.mcl_projector import bn_mlp


@MODELS.register_module()
class MCLHead(BaseModule):
    """Per-level predictors and contrastive loss of MCL.

    `Multi-Level Contrastive Learning for Dense Prediction Task
    <https://arxiv.org/abs/2304.02010>`_ (reference code GuoQiushan/MCL).
    Level ``l``'s sub-image embeddings go through their own predictor
    (``Linear-BN-ReLU-Linear``, Linear weights N(0, 0.01), zero biases, as
    released), are L2-normalised and contrasted against the momentum
    encoder's keys of the plain views of the global batch: cosine logits at
    temperature ``T``, cross-entropy to the sub-image's source image,
    scaled by ``2 T`` (released) and by the level weight.

    Args:
        in_channels (int): Embedding dimension of the projector.
        hid_channels (int): Hidden width of the predictors.
        level_weights (Sequence[float]): One per montage level.
            Defaults to (0.5, 0.25, 0.125, 0.125).
        temperature (float): Released config ``T=1.0``. Defaults to 1.0.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 level_weights: Sequence[float] = (0.5, 0.25, 0.125, 0.125),
                 temperature: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.level_weights = tuple(level_weights)
        self.temperature = temperature
        self.predictors = nn.ModuleList([
            bn_mlp(in_channels, hid_channels, in_channels)
            for _ in self.level_weights
        ])
        for m in self.predictors.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def loss(self, embeddings: List[torch.Tensor], keys: torch.Tensor,
             labels: List[torch.Tensor]) -> List[torch.Tensor]:
        """Weighted InfoNCE of every level.

        Args:
            embeddings (List[torch.Tensor]): Per level ``(N_l, C)``
                projector outputs of the sub-images.
            keys (torch.Tensor): ``(K, C)`` normalised keys (plain views of
                the global batch).
            labels (List[torch.Tensor]): Per level ``(N_l,)`` index of each
                sub-image's source in ``keys``.

        Returns:
            List[torch.Tensor]: One weighted scalar loss per level.
        """
        losses = []
        for lvl, (z, y, w) in enumerate(
                zip(embeddings, labels, self.level_weights)):
            q = F.normalize(self.predictors[lvl](z), dim=1)
            logits = q @ keys.t() / self.temperature
            losses.append(
                F.cross_entropy(logits, y) * (2 * self.temperature) * w)
        return losses
