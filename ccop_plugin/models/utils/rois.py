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


def roi_align_level(feat: torch.Tensor, rois: torch.Tensor, stride: float,
                    output_size: int = 7, sampling_ratio: int = 0,
                    aligned: bool = True) -> torch.Tensor:
    """RoIAlign of ``rois`` (input-image pixels) from one feature map.

    The one RoI pooling of the package (``torchvision.ops.roi_align``, so
    a stock CUDA torch runs it without an mmcv build): box coordinates and
    the pooling stay in float32 whatever the feature dtype (half or bfloat16
    would round the boxes to whole pixels on small views), as under
    torchvision's autocast rule for ``roi_align``.

    Args:
        feat (torch.Tensor): ``(B, C, H, W)`` feature map of stride
            ``stride`` (input pixels per cell).
        rois (torch.Tensor): ``(K, 5)`` (batch index, x1, y1, x2, y2).
        stride (float): Stride of ``feat``.
        output_size (int): Side of the pooled grid.
        sampling_ratio (int): Sampling points per bin (0: adaptive).
        aligned (bool): Half-pixel alignment (Detectron2's ``ROIAlignV2``).

    Returns:
        torch.Tensor: ``(K, C, output_size, output_size)`` float32.
    """
    from torchvision.ops import roi_align
    return roi_align(feat.float(), rois.float(), output_size=output_size,
                     spatial_scale=1. / stride,
                     sampling_ratio=sampling_ratio, aligned=aligned)
