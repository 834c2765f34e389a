"""Point sampling inside regions and reading features at points (PLRC).

The point losses live with the heads that own them
(:mod:`ccop_plugin.models.heads.point_heads`).
"""
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


def relative_points_in_boxes(rel: torch.Tensor, boxes: torch.Tensor,
                             flip: bool = False) -> torch.Tensor:
    """Points at box-relative positions, so the same ``rel`` gives
    corresponding points of the same region in two views.

    Args:
        rel (torch.Tensor): ``(M, P, 2)`` ``(u, v)`` in ``[0, 1]``, relative
            to the un-flipped image.
        boxes (torch.Tensor): ``(M, 4)`` ``xyxy`` pixels in the view.
        flip (bool): The view is horizontally flipped (``u -> 1 - u``).

    Returns:
        torch.Tensor: ``(M, P, 2)`` ``(x, y)`` pixels.
    """
    if flip:
        rel = torch.stack([1 - rel[..., 0], rel[..., 1]], dim=-1)
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    return lo + rel * (hi - lo)


def select_key_points(fk: torch.Tensor, fq: torch.Tensor,
                      num_keep: int) -> torch.Tensor:
    """PLRC's key-point selection (released ``PLRC.forward``).

    For key point ``i`` of a region, ``j*(i) = argmax_j <k_i, q_j>`` over
    the query points of the same region; the kept key points are
    ``k[j*(i)]`` for ``i < num_keep`` (the released code gathers the key
    features with the argmax query index, literally reproduced here).

    Args:
        fk (torch.Tensor): ``(R, S, C)`` key point features.
        fq (torch.Tensor): ``(R, S, C)`` query point features.
        num_keep (int): Points kept per region.

    Returns:
        torch.Tensor: ``(R, num_keep)`` indices into the key points.
    """
    sim = torch.bmm(F.normalize(fk, dim=-1),
                    F.normalize(fq, dim=-1).transpose(1, 2))
    return sim.argmax(dim=2)[:, :num_keep]


def pad_by_image(x: torch.Tensor,
                 counts: List[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split ``(sum counts, C)`` rows per image and pad.

    Returns:
        tuple: ``(B, max(counts), C)`` zero-padded rows and the
        ``(B, max(counts))`` bool mask of real rows.
    """
    B, P = len(counts), max(list(counts) + [0])
    out = x.new_zeros(B, P, x.shape[-1])
    mask = torch.zeros(B, P, dtype=torch.bool, device=x.device)
    start = 0
    for b, n in enumerate(counts):
        out[b, :n] = x[start:start + n]
        mask[b, :n] = True
        start += n
    return out, mask


def grid_centres(h: int, w: int, view_hw: Tuple[int, int],
                 device=None) -> torch.Tensor:
    """``(h * w, 2)`` input-pixel centres of an ``h x w`` map's cells,
    raster order."""
    H, W = view_hw
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * H / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * W / w
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
