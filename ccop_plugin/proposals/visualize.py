"""Draw proposals on an image (used by ``tools/visualize_proposals.py``;
the file is read by :func:`.proposal_file.read_image_proposals`)."""
import colorsys
from typing import List, Optional, Tuple

import cv2
import numpy as np


def _colors(n: int) -> List[Tuple[int, int, int]]:
    """``n`` well-separated BGR colours (golden-ratio hue steps)."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.9, 1.0)
        out.append((int(b * 255), int(g * 255), int(r * 255)))
    return out


def draw_proposals(img: np.ndarray, boxes_xywh: np.ndarray,
                   thickness: int = 2, label: bool = True,
                   title: Optional[str] = None) -> np.ndarray:
    """Return a copy of ``img`` (BGR) with COCO ``xywh`` boxes drawn.

    Args:
        img: ``(H, W, 3)`` uint8 BGR image.
        boxes_xywh: ``(N, 4)`` boxes in image pixels.
        thickness: Line width in pixels.
        label: Write each box's rank (0 = first in the file) at its corner.
        title: Optional text in the top-left corner.
    """
    canvas = img.copy()
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    for i, ((x, y, w, h), c) in enumerate(zip(boxes, _colors(len(boxes)))):
        p1 = (int(round(x)), int(round(y)))
        p2 = (int(round(x + w)) - 1, int(round(y + h)) - 1)
        cv2.rectangle(canvas, p1, p2, c, thickness, cv2.LINE_AA)
        if label:
            cv2.putText(canvas, str(i), (p1[0] + 2, p1[1] + 12),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, 1, cv2.LINE_AA)
    if title:
        cv2.putText(canvas, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return canvas
