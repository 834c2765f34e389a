"""OpenCV selective search for one image, with optional down-scaling.

:func:`propose` is the whole per-image pipeline (search -> filter -> NMS ->
top-k) used by the dataset-scale tool, the benchmark and the tests.
"""
import time
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from .config import ProposalConfig
from .filters import filter_boxes


def _ximgproc():
    if not hasattr(cv2, 'ximgproc'):
        raise ImportError(
            'cv2.ximgproc is missing: selective search needs '
            'opencv-contrib-python(-headless), not opencv-python. Run '
            '`pip uninstall -y opencv-python && pip install '
            'opencv-contrib-python-headless` (tools/setup_env.sh does this).')
    return cv2.ximgproc


def search_shape(h: int, w: int, max_size: Optional[int] = None,
                 max_pixels: Optional[int] = None,
                 max_aspect: Optional[float] = None) -> Tuple[int, int]:
    """``(height, width)`` the search runs at for an ``h x w`` image.

    Three bounds, applied in this order:

    1. ``max_size``: shrink (keeping the aspect ratio) to this longer side.
    2. ``max_aspect``: squeeze the longer axis alone until the image is at
       most ``max_aspect`` times longer than it is wide (or the reverse).
       Selective search on a thin strip costs far more per pixel than on a
       square image (OpenCV's region grouping), so this bounds the time of
       panoramas and scan lines.
    3. ``max_pixels``: shrink (keeping the aspect ratio) to at most this many
       pixels.

    ``None`` disables a bound. Boxes found at the returned size are mapped
    back to ``h x w`` by the caller.
    """
    nh, nw = float(h), float(w)
    if max_size is not None and max(nh, nw) > max_size:
        s = max_size / max(nh, nw)
        nh, nw = nh * s, nw * s
    if max_aspect is not None:
        if nw > nh * max_aspect:
            nw = nh * max_aspect
        elif nh > nw * max_aspect:
            nh = nw * max_aspect
    if max_pixels is not None and nh * nw > max_pixels:
        s = (max_pixels / (nh * nw)) ** 0.5
        nh, nw = nh * s, nw * s
    new_h = min(h, max(1, int(round(nh))))
    new_w = min(w, max(1, int(round(nw))))
    return new_h, new_w


def resize_for_search(img: np.ndarray, max_size: Optional[int],
                      max_pixels: Optional[int] = None,
                      max_aspect: Optional[float] = None
                      ) -> Tuple[np.ndarray, float, float]:
    """Shrink ``img`` to the size :func:`search_shape` gives.

    Returns:
        tuple: ``(image, sx, sy)`` where original ``x = x_small * sx`` and
        ``y = y_small * sy``. Images already small enough are returned as is
        with ``sx = sy = 1``.
    """
    h, w = img.shape[:2]
    new_h, new_w = search_shape(h, w, max_size, max_pixels, max_aspect)
    if (new_h, new_w) == (h, w):
        return img, 1.0, 1.0
    small = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return small, w / float(new_w), h / float(new_h)


# OpenCV's defaults of switchToSelectiveSearchFast/Quality (base_k, inc_k)
# and switchToSingleStrategy (k).
DEFAULT_K = {'fast': 150, 'quality': 150, 'single': 200}
DEFAULT_INC_K = 150


def selective_search(img: np.ndarray, mode: str = 'fast',
                     k: Optional[int] = None, inc_k: Optional[int] = None,
                     sigma: Optional[float] = None,
                     max_size: Optional[int] = None,
                     scale_k: bool = True,
                     max_pixels: Optional[int] = None,
                     max_aspect: Optional[float] = None) -> np.ndarray:
    """Run OpenCV ``ximgproc`` selective search on a BGR image.

    Args:
        img: ``(H, W, 3)`` uint8 BGR image (``(H, W)`` grey is accepted).
        mode: ``'fast'``, ``'quality'`` or ``'single'``.
        k: Graph-segmentation ``k`` (``base_k`` in fast/quality), or
            ``None`` for OpenCV's default.
        inc_k: ``k`` increment (fast/quality), or ``None`` for the default.
        sigma: Graph-segmentation sigma, or ``None`` for the default.
        max_size: Shrink the image to this longer side before the search.
        scale_k: When the image is shrunk, multiply ``k`` and ``inc_k`` by
            the pixel-count ratio (small / original). The graph
            segmentation's merge threshold ``k / |C|`` counts pixels, so this
            keeps segments the same size relative to the image as at full
            resolution.
        max_pixels: Shrink the image to at most this many pixels.
        max_aspect: Squeeze the longer axis of the image to at most this
            many times the shorter one (see :func:`search_shape`).

    Returns:
        np.ndarray: ``(N, 4)`` float64 ``xyxy`` boxes in the pixel coordinates
        of the input image, clipped to it, in OpenCV's (random) order.
    """
    if img is None or img.ndim not in (2, 3) or img.size == 0:
        raise ValueError('selective_search expects a non-empty HxW or HxWx3 '
                         f'image, got {None if img is None else img.shape}')
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    h, w = img.shape[:2]
    small, sx, sy = resize_for_search(img, max_size, max_pixels,
                                      max_aspect)
    if mode not in DEFAULT_K:
        raise ValueError(f'unknown selective-search mode {mode!r}')
    if scale_k and (sx != 1.0 or sy != 1.0):
        ratio = small.shape[0] * small.shape[1] / float(h * w)
        k = max(1, int(round((k or DEFAULT_K[mode]) * ratio)))
        if mode != 'single':
            inc_k = max(1, int(round((inc_k or DEFAULT_INC_K) * ratio)))
    ss = _ximgproc().segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(small)
    kwargs = {}
    if mode == 'single':
        if k is not None:
            kwargs['k'] = int(k)
        if sigma is not None:
            kwargs['sigma'] = float(sigma)
        ss.switchToSingleStrategy(**kwargs)
    elif mode in ('fast', 'quality'):
        if k is not None:
            kwargs['base_k'] = int(k)
        if inc_k is not None:
            kwargs['inc_k'] = int(inc_k)
        if sigma is not None:
            kwargs['sigma'] = float(sigma)
        if mode == 'fast':
            ss.switchToSelectiveSearchFast(**kwargs)
        else:
            ss.switchToSelectiveSearchQuality(**kwargs)
    rects = np.asarray(ss.process(), dtype=np.float64).reshape(-1, 4)
    boxes = rects.copy()
    boxes[:, 2:] = rects[:, :2] + rects[:, 2:]  # xywh -> xyxy
    if sx != 1.0 or sy != 1.0:
        boxes[:, 0::2] *= sx
        boxes[:, 1::2] *= sy
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, w)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, h)
    return boxes


def propose(img: np.ndarray, cfg: ProposalConfig, file_name: str = '',
            return_candidates: bool = False) -> Dict[str, object]:
    """Selective-search proposals of one image, filtered as configured.

    Args:
        img: ``(H, W, 3)`` uint8 BGR image.
        cfg: Proposal settings.
        file_name: Image key (relative path) seeding the random NMS scores.
        return_candidates: Also return the raw search boxes.

    Returns:
        dict: ``boxes`` ``(K, 4)`` float64 ``xyxy`` in original pixels, best
        first; ``stage`` (see :func:`filter_boxes`); ``num_candidates``;
        ``seconds`` (search + filtering); ``search_hw``, the ``(height,
        width)`` the search ran at if the cost bounds ``max_pixels`` /
        ``max_search_aspect`` shrank the image (else ``None``; ``max_size``
        alone does not count); ``candidates`` ``(N, 4)`` if asked.
    """
    t0 = time.perf_counter()
    candidates = selective_search(img, cfg.mode, cfg.k, cfg.inc_k, cfg.sigma,
                                  cfg.max_size, cfg.scale_k, cfg.max_pixels,
                                  cfg.max_search_aspect)
    boxes, stage = filter_boxes(candidates, img.shape[:2], cfg, file_name)
    h, w = img.shape[:2]
    shape = search_shape(h, w, cfg.max_size, cfg.max_pixels,
                         cfg.max_search_aspect)
    bounded = shape != search_shape(h, w, cfg.max_size)
    out = dict(boxes=boxes, stage=stage, num_candidates=len(candidates),
               seconds=time.perf_counter() - t0,
               search_hw=shape if bounded else None)
    if return_candidates:
        out['candidates'] = candidates
    return out


def read_image(path: str) -> np.ndarray:
    """Read a BGR image; raise ``ValueError`` naming the file if unreadable.

    EXIF orientation is applied (as by ``mmcv.imread`` with the cv2 backend),
    so boxes match the image the training pipeline sees.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ValueError(f'{path}: cannot read file ({e})') from None
    if data.size == 0:
        raise ValueError(f'{path}: file is empty')
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{path}: cannot decode image (corrupt or not an '
                         'image format OpenCV reads)')
    return img
