"""Small box helpers shared by the proposal tool, the data pipeline and models.

Boxes are ``(N, 4)`` arrays or tensors. ``xyxy`` means ``(x1, y1, x2, y2)`` in
pixels, ``xywh`` is COCO's ``(x, y, width, height)``. IoU and NMS for tensors
come from :mod:`torchvision.ops`; these helpers cover the NumPy side.
"""
import numpy as np


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Convert ``(N, 4)`` COCO ``xywh`` boxes to ``xyxy`` (float32)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] = boxes[:, :2] + boxes[:, 2:]
    return out


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """Convert ``(N, 4)`` ``xyxy`` boxes to COCO ``xywh`` (float32)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] = boxes[:, 2:] - boxes[:, :2]
    return out


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``(N, 4)`` ``xyxy`` boxes; negative extents count as 0."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return (np.clip(boxes[:, 2] - boxes[:, 0], 0, None) *
            np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` ``xyxy`` boxes: ``(N, M)``."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)

