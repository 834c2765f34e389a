"""Intra-image object discrimination head of CCOP.

For the proposals of one image, a query RoI ``q_i`` must be closer to its own
key RoI ``k_i`` than to the key RoI ``k_j`` of any other proposal of the same
image whose *key* box overlaps box ``i`` by IoU < 0.05, by a margin of 0.4::

    anchor='query' (the paper's equation, default):
        l_ij = relu(s(q_i, k_j) - s(q_i, k_i) + margin)
    anchor='key' (released code: ``x - x.diag()[None, :]``):
        l_ij = relu(s(q_i, k_j) - s(q_j, k_j) + margin)

with ``s`` the cosine similarity (embeddings are normalised). The loss is the
mean of ``l_ij`` over all valid pairs of all images of the batch, 0 (with a
gradient path) when there is none. Key embeddings are those of the original key
boxes (no jitter), without gradient. The computation is vectorised over the
whole batch: one similarity matrix, masked to pairs of the same image.
"""
from typing import List, Optional, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torchvision.ops import box_iou


@MODELS.register_module()
class IntraObjectDiscriminationHead(BaseModule):
    """Triplet loss between proposals of the same image.

    Args:
        margin (float): Triplet margin. Defaults to 0.4.
        iou_thr (float): Pairs whose key boxes overlap by IoU below this are
            negatives. Defaults to 0.05.
        anchor (str): ``'query'`` (paper) or ``'key'`` (released code).
            Defaults to ``'query'``.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 margin: float = 0.4,
                 iou_thr: float = 0.05,
                 anchor: str = 'query',
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if anchor not in ('query', 'key'):
            raise ValueError(
                f"anchor must be 'query' or 'key', got {anchor!r}")
        self.margin = margin
        self.iou_thr = iou_thr
        self.anchor = anchor

    def valid_pairs(self, key_boxes: torch.Tensor,
                    img_inds: torch.Tensor) -> torch.Tensor:
        """``(M, M)`` bool: same image, different RoI, key IoU < thr."""
        same_img = img_inds[:, None] == img_inds[None, :]
        iou = box_iou(key_boxes.float(), key_boxes.float())
        not_self = ~torch.eye(
            key_boxes.shape[0], dtype=torch.bool, device=key_boxes.device)
        return same_img & not_self & (iou < self.iou_thr)

    def loss(self, query: torch.Tensor, key: torch.Tensor,
             key_boxes: torch.Tensor, img_inds: torch.Tensor) -> torch.Tensor:
        """Compute the intra-image loss.

        Args:
            query (torch.Tensor): ``(M, C)`` normalised query RoI embeddings.
            key (torch.Tensor): ``(M, C)`` normalised key RoI embeddings of
                the same proposals (original key boxes).
            key_boxes (torch.Tensor): ``(M, 4)`` key boxes, ``xyxy``.
            img_inds (torch.Tensor): ``(M,)`` image index of each RoI.

        Returns:
            torch.Tensor: Scalar loss.
        """
        sim = query @ key.detach().t()  # s(q_i, k_j), (M, M)
        diag = sim.diagonal()
        if self.anchor == 'query':
            triplet = sim - diag[:, None] + self.margin
        else:
            triplet = sim - diag[None, :] + self.margin
        triplet = triplet.clamp(min=0)
        with torch.no_grad():
            valid = self.valid_pairs(key_boxes, img_inds).to(triplet.dtype)
        return (triplet * valid).sum() / valid.sum().clamp(min=1.)
