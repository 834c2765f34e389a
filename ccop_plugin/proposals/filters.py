"""Box filters and random-score NMS used on selective-search output.

All functions take ``(N, 4)`` ``xyxy`` boxes in original image pixels and are
vectorised (NumPy masks; NMS runs in :func:`torchvision.ops.nms`).
"""
import hashlib
from typing import Tuple

import numpy as np

# Imported here (not lazily in nms) so the workers' fork server loads torch
# once instead of every worker paying for it.
import torch
from torchvision.ops import nms as tv_nms

from .config import ProposalConfig


def _wh(boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]


def aspect_mask(boxes: np.ndarray, min_aspect: float = 1.0 / 3.0,
                max_aspect: float = 3.0,
                inclusive: bool = False) -> np.ndarray:
    """Boolean mask of boxes with ``min_aspect < w / h < max_aspect``.

    ``inclusive=True`` uses ``<=`` on both sides. Degenerate boxes (``w`` or
    ``h`` <= 0) never pass.
    """
    w, h = _wh(boxes)
    valid = (w > 0) & (h > 0)
    ratio = np.divide(w, h, out=np.zeros_like(w), where=valid)
    if inclusive:
        ok = (ratio >= min_aspect) & (ratio <= max_aspect)
    else:
        ok = (ratio > min_aspect) & (ratio < max_aspect)
    return valid & ok


def side_mask(boxes: np.ndarray, min_side: float = 20.0) -> np.ndarray:
    """Boolean mask of boxes with ``sqrt(w * h) > min_side``."""
    w, h = _wh(boxes)
    return np.sqrt(np.clip(w, 0, None) * np.clip(h, 0, None)) > min_side


def min_wh_mask(boxes: np.ndarray, min_wh: float = 32.0) -> np.ndarray:
    """Boolean mask of boxes with ``w >= min_wh`` and ``h >= min_wh``."""
    w, h = _wh(boxes)
    return (w >= min_wh) & (h >= min_wh)


def rel_size_mask(boxes: np.ndarray, img_hw: Tuple[int, int],
                  min_rel: float = 0.3, max_rel: float = 0.8) -> np.ndarray:
    """Boolean mask of boxes with ``min_rel <= sqrt(wh / (W H)) <= max_rel``.
    """
    w, h = _wh(boxes)
    img_h, img_w = img_hw
    rel = np.sqrt(np.clip(w, 0, None) * np.clip(h, 0, None) /
                  float(img_w * img_h))
    return (rel >= min_rel) & (rel <= max_rel)


def ccop_filter(boxes: np.ndarray, cfg: ProposalConfig) -> np.ndarray:
    """CCOP reference filter: open aspect interval and ``sqrt(wh) > min_side``.

    Returns:
        np.ndarray: Mask of shape ``(N,)``.
    """
    return (aspect_mask(boxes, cfg.min_aspect, cfg.max_aspect)
            & side_mask(boxes, cfg.min_side))


def soco_filter(boxes: np.ndarray, img_hw: Tuple[int, int],
                cfg: ProposalConfig) -> Tuple[np.ndarray, int]:
    """SoCo filter, relaxed step by step until something survives.

    Stage 0: ``w, h >= min_wh``, aspect in ``[min_aspect, max_aspect]`` and
    relative size in ``[min_rel_size, max_rel_size]``; stage 1 drops the size
    constraint; stage 2 drops the aspect constraint too. If stage 2 keeps
    nothing the mask is empty and the caller falls back to the whole image
    (stage 3).

    Returns:
        tuple: ``(mask (N,), stage)``.
    """
    big = min_wh_mask(boxes, cfg.min_wh)
    aspect = aspect_mask(boxes, cfg.min_aspect, cfg.max_aspect,
                         inclusive=True)
    size = rel_size_mask(boxes, img_hw, cfg.min_rel_size, cfg.max_rel_size)
    for stage, mask in enumerate((big & aspect & size, big & aspect, big)):
        if mask.any():
            return mask, stage
    return np.zeros(len(big), dtype=bool), 3


def image_seed(file_name: str, seed: int = 0) -> int:
    """Stable 64-bit seed from a file name and a global seed.

    Uses SHA-256 (Python's ``hash`` is salted per process).
    """
    digest = hashlib.sha256(f'{seed}:{file_name}'.encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'little')


def random_scores(n: int, file_name: str, seed: int = 0) -> np.ndarray:
    """``n`` scores in ``[0.01, 1)`` (as the reference) drawn reproducibly."""
    rng = np.random.default_rng(image_seed(file_name, seed))
    return rng.uniform(0.01, 1.0, size=n).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS; indices of kept boxes by decreasing score.

    A box is suppressed when its IoU with a higher-scored kept box is greater
    than ``iou_thr`` (the reference's rule). Runs in
    :func:`torchvision.ops.nms` (C++).

    Args:
        boxes: ``(N, 4)`` ``xyxy`` boxes.
        scores: ``(N,)`` scores.
        iou_thr: IoU threshold.

    Returns:
        np.ndarray: ``(K,)`` int64 indices into ``boxes``.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f'{len(boxes)} boxes but {len(scores)} scores')
    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)
    keep = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                  float(iou_thr))
    return keep.numpy().astype(np.int64)


def sort_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes in lexicographic ``(x1, y1, x2, y2)`` order.

    OpenCV returns selective-search boxes in a randomly ranked order; sorting
    makes the score assignment (and so the NMS result) reproducible.
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0]))
    return boxes[order]


def filter_boxes(boxes: np.ndarray, img_hw: Tuple[int, int],
                 cfg: ProposalConfig, file_name: str = ''
                 ) -> Tuple[np.ndarray, int]:
    """Apply the configured filter, NMS and top-k to candidate boxes.

    Args:
        boxes: ``(N, 4)`` ``xyxy`` candidates in original image pixels.
        img_hw: ``(height, width)`` of the original image.
        cfg: Proposal settings.
        file_name: Image key used to seed the random NMS scores.

    Returns:
        tuple: ``(kept (K, 4) xyxy float64, stage)``. ``stage`` is 0 when the
        main filter produced the boxes, ``1``/``2`` for SoCo's relaxed steps
        and 3 when nothing survived the SoCo cascade (then the whole image
        is returned if ``cfg.fallback_whole_image``). Kept boxes are ordered
        by their random score (NMS order), best first.
    """
    boxes = sort_boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    if cfg.filter == 'ccop':
        mask, stage = ccop_filter(boxes, cfg), 0
    else:
        mask, stage = soco_filter(boxes, img_hw, cfg)
    boxes = boxes[mask]
    if len(boxes) == 0:
        if cfg.fallback_whole_image:
            h, w = img_hw
            return np.array([[0.0, 0.0, float(w), float(h)]]), 3
        return np.zeros((0, 4)), stage
    scores = random_scores(len(boxes), file_name, cfg.seed)
    if cfg.nms_iou is not None:
        order = nms(boxes, scores, cfg.nms_iou)
    else:
        # No NMS: a reproducible random order, so top-k is a random subset.
        order = np.argsort(-scores, kind='stable')
    if cfg.max_num is not None:
        order = order[:cfg.max_num]
    return boxes[order], stage
