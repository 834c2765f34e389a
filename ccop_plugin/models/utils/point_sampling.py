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


def dino_distillation_loss(student: torch.Tensor, teacher: torch.Tensor,
                           center: torch.Tensor, student_temp: float,
                           teacher_temp: float) -> torch.Tensor:
    """DINO cross-entropy with a centred, sharpened teacher.

    ``mean_m sum_j -softmax((t_m - c) / T_t)_j log softmax(s_m / T_s)_j``;
    the teacher side carries no gradient.

    Args:
        student (torch.Tensor): ``(M, D)`` student logits.
        teacher (torch.Tensor): ``(M, D)`` teacher logits.
        center (torch.Tensor): ``(1, D)`` centre.
        student_temp (float): ``T_s``.
        teacher_temp (float): ``T_t``.

    Returns:
        torch.Tensor: Scalar (0 with a graph if ``M == 0``).
    """
    if student.shape[0] == 0:
        return student.sum() * 0.
    t = F.softmax((teacher.detach() - center) / teacher_temp, dim=-1)
    s = F.log_softmax(student / student_temp, dim=-1)
    return -(t * s).sum(-1).mean()


def grid_centres(h: int, w: int, view_hw: Tuple[int, int],
                 device=None) -> torch.Tensor:
    """``(h * w, 2)`` input-pixel centres of an ``h x w`` map's cells,
    raster order."""
    H, W = view_hw
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * H / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * W / w
    yy, xx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
