"""MoCo logits: one convention for every queue-based contrastive head."""
from typing import Tuple

import torch


def queue_logits(query: torch.Tensor, key: torch.Tensor,
                 queue: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative logits of MoCo (before the temperature).

    What mmpretrain's ``MoCo.loss`` feeds ``ContrastiveHead.loss``; CCOP's
    image branch, its RoI branch (``ObjectContrastiveHead``) and PLRC's
    image branch use it, so every head receives ``(pos, neg)``.

    Args:
        query (torch.Tensor): ``(N, C)`` normalised query embeddings.
        key (torch.Tensor): ``(N, C)`` normalised positive keys (no
            gradient flows into them).
        queue (torch.Tensor): ``(C, K)`` normalised negative keys.

    Returns:
        tuple: ``pos`` ``(N, 1)`` and ``neg`` ``(N, K)``.
    """
    pos = torch.einsum('nc,nc->n', query, key.detach()).unsqueeze(-1)
    neg = torch.einsum('nc,ck->nk', query, queue.clone().detach())
    return pos, neg
