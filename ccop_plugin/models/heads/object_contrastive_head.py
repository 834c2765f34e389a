"""Inter-image object-level contrastive head of CCOP.

Each query RoI embedding ``q_i`` is contrasted against its positive key RoI
``k_i`` (chosen by :class:`~ccop_plugin.models.utils.BoxJitterCurriculum`) and
a queue of key RoIs from earlier batches (65536 in the paper) with InfoNCE at
temperature 0.2::

    L = -log( exp(q_i.k_i / T) / (exp(q_i.k_i / T) + sum_j exp(q_i.n_j / T)) )

The queue itself lives in :class:`~ccop_plugin.models.algorithms.CCOP` (a
buffer, so it is checkpointed) and receives the positives' key embeddings.
The algorithm makes the logits (``queue_logits`` of
``ccop_plugin.models.utils``), as for the image branch: the head takes
``(pos, neg)`` like mmpretrain's ``ContrastiveHead``.
"""
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS


@MODELS.register_module()
class ObjectContrastiveHead(BaseModule):
    """InfoNCE between query RoIs, positive key RoIs and a key queue.

    Args:
        temperature (float): Softmax temperature. Defaults to 0.2.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 temperature: float = 0.2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.temperature = temperature

    def loss(self, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Compute the RoI InfoNCE loss.

        Args:
            pos (torch.Tensor): ``(M, 1)`` query-positive similarities.
            neg (torch.Tensor): ``(M, L)`` query-queue similarities.

        Returns:
            torch.Tensor: Scalar loss; 0 (still attached to the query
            through ``neg``) when ``M == 0``.
        """
        if pos.shape[0] == 0:
            return neg.sum() * 0.
        logits = torch.cat([pos, neg], dim=1) / self.temperature
        labels = logits.new_zeros(logits.shape[0], dtype=torch.long)
        return F.cross_entropy(logits, labels)
