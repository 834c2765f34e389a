"""Point sampling inside regions and point-level labels (PLRC)."""
from typing import List, Tuple

import torch
import torch.nn.functional as F


def sample_points_in_boxes(boxes: torch.Tensor,
                           num_points: int) -> torch.Tensor:
    """Uniform points inside each box.

    Args:
        boxes (torch.Tensor): ``(M, 4)`` ``xyxy`` pixels.
        num_points (int): Points per box.

    Returns:
        torch.Tensor: ``(M, num_points, 2)`` ``(x, y)`` pixels.
    """
    u = torch.rand(boxes.shape[0], num_points, 2, device=boxes.device)
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    return lo + u * (hi - lo)


def read_points(feats: torch.Tensor, points: List[torch.Tensor],
                img_size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear features at pixel points with ``grid_sample``.

    Args:
        feats (torch.Tensor): ``(B, C, h, w)`` dense features covering the
            ``img_size`` input.
        points (list[torch.Tensor]): Per image ``(P_b, 2)`` ``(x, y)``
            input pixels.
        img_size (tuple): ``(H, W)`` of the input.

    Returns:
        torch.Tensor: ``(sum P_b, C)``.
    """
    H, W = img_size
    P = max([p.shape[0] for p in points] + [1])
    grid = feats.new_zeros(len(points), 1, P, 2)
    for b, p in enumerate(points):
        if p.numel():
            grid[b, 0, :p.shape[0], 0] = p[:, 0] / W * 2 - 1
            grid[b, 0, :p.shape[0], 1] = p[:, 1] / H * 2 - 1
    out = F.grid_sample(feats, grid, mode='bilinear', align_corners=False)
    out = out[:, :, 0].transpose(1, 2)  # (B, P, C)
    return torch.cat([out[b, :p.shape[0]] for b, p in enumerate(points)])


def point_pair_labels(region_q: torch.Tensor,
                      region_k: torch.Tensor) -> torch.Tensor:
    """``(Nq, Nk)`` bool: point pairs of the same (global) region id."""
    return region_q[:, None] == region_k[None, :]


def multi_positive_infonce(sim: torch.Tensor, pos: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Contrastive loss with several positives per row.

    ``-mean_{p in P_i} log softmax_j(sim_ij / T)[p]``, averaged over the rows
    that have a positive (0 if none).
    """
    logp = F.log_softmax(sim / temperature, dim=1)
    npos = pos.sum(1)
    keep = npos > 0
    if not keep.any():
        return sim.sum() * 0.
    per_row = -(logp * pos).sum(1)[keep] / npos[keep]
    return per_row.mean()
