"""Map boxes between two views of the same image (crop + resize + flip)."""
from typing import Sequence, Tuple

import torch


def view_to_image(boxes: torch.Tensor, crop: Sequence[float], flip: bool,
                  size: int) -> torch.Tensor:
    """``(N, 4)`` view pixels -> image pixels for a ``(top, left, h, w)``
    crop resized to ``size`` x ``size`` (then flipped if ``flip``)."""
    top, left, h, w = [float(c) for c in crop]
    b = boxes.clone()
    if flip:
        b[:, [0, 2]] = size - boxes[:, [2, 0]]
    scale = b.new_tensor([w / size, h / size, w / size, h / size])
    return b * scale + b.new_tensor([left, top, left, top])


def image_to_view(boxes: torch.Tensor, crop: Sequence[float], flip: bool,
                  size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Image pixels -> view pixels (clipped to the crop).

    Returns:
        tuple: boxes ``(N, 4)`` and the visible fraction of each box ``(N,)``.
    """
    top, left, h, w = [float(c) for c in crop]
    b = boxes - boxes.new_tensor([left, top, left, top])
    area = ((boxes[:, 2] - boxes[:, 0]) *
            (boxes[:, 3] - boxes[:, 1])).clamp_min(1e-6)
    b[:, 0::2] = b[:, 0::2].clamp(0, w)
    b[:, 1::2] = b[:, 1::2].clamp(0, h)
    frac = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / area
    b = b * b.new_tensor([size / w, size / h, size / w, size / h])
    if flip:
        b[:, [0, 2]] = size - b[:, [2, 0]]
    return b, frac
