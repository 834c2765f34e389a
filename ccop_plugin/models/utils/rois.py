"""RoIs of per-image boxes, as ``roi_align`` expects them."""
from typing import Sequence

import torch


def boxes_to_rois(boxes: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-image ``(N_b, 4)`` boxes to ``(sum N_b, 5)`` RoIs.

    Column 0 is the image index in the batch, as ``roi_align`` expects
    (mmdet's ``bbox2roi`` without the mmdet import).

    Args:
        boxes (Sequence[torch.Tensor]): Per image ``(N_b, 4)`` ``xyxy``.

    Returns:
        torch.Tensor: ``(sum N_b, 5)``; ``(0, 5)`` for no image.
    """
    rois = []
    for b, bxs in enumerate(boxes):
        bxs = bxs.reshape(-1, 4)
        rois.append(
            torch.cat([bxs.new_full((bxs.shape[0], 1), float(b)), bxs],
                      dim=1))
    if not rois:
        return torch.zeros((0, 5))
    return torch.cat(rois, dim=0)
