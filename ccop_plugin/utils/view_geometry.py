"""Where image points and boxes land in a view, and back.

The one implementation of the view geometry of the plugin: the data pipeline
(``BoxAwareMultiView``), ``HeatmapBoxSource`` and PLRC all map through it.

A *view* is the ``crop = (top, left, h, w)`` of the image (image pixels)
resized to ``size`` (an int for square views, or ``(H, W)``) and then flipped
horizontally when ``flip``; ``BoxAwareMultiView`` records them per view as
``view_crops`` and ``view_flips``. Coordinates are continuous pixel
coordinates (pixel edges: the whole view is the box ``(0, 0, W, H)``).

Points are ``(N, 2)`` ``(x, y)``; boxes are ``(N, 4)`` ``xyxy``. Both go
through the same two steps (crop offset, then resize + flip; columns
``0::2`` are x, ``1::2`` are y, so a box is its two corners). Boxes are
clipped to the crop before the resize and also report the visible fraction
of their area; points report whether they fall inside the view.

The same code maps torch tensors (the models: on the batch's device, in its
dtype, no NumPy round trip) and NumPy arrays (the data pipeline: NumPy in,
NumPy out, no torch overhead per sample); only the spelling of a constant,
a clip and a column reversal differs between the two (``_const``,
``_clip``, ``_reversed_cols``).
"""
from typing import Sequence, Tuple, Union

import numpy as np
import torch

Coords = Union[torch.Tensor, np.ndarray]
Size = Union[int, Sequence[int]]


def _hw(size: Size) -> Tuple[float, float]:
    """``(H, W)`` of the views as floats."""
    if isinstance(size, (int, np.integer)):
        return float(size), float(size)
    H, W = size
    return float(H), float(W)


def _crop(crop: Sequence) -> Tuple[float, float, float, float]:
    top, left, h, w = [float(c) for c in crop]
    if h <= 0 or w <= 0:
        raise ValueError(f'crop (top, left, h, w) needs h, w > 0, got {crop}')
    return top, left, h, w


def _check(coords: Coords, width: int) -> Coords:
    """``(N, width)`` float coordinates (same library, device and dtype;
    integers become float32)."""
    if isinstance(coords, torch.Tensor):
        if not coords.is_floating_point():
            coords = coords.float()
        empty = coords.numel() == 0
    else:
        coords = np.asarray(coords)
        if not np.issubdtype(coords.dtype, np.floating):
            coords = coords.astype(np.float32)
        empty = coords.size == 0
    if coords.ndim != 2 or coords.shape[1] != width:
        if empty:
            return coords.reshape(0, width)
        raise ValueError(f'expected (N, {width}) coordinates, got '
                         f'{tuple(coords.shape)}')
    return coords


# the few operations whose spelling differs between torch and NumPy
def _const(like: Coords, values) -> Coords:
    if isinstance(like, torch.Tensor):
        return like.new_tensor(values)
    return np.asarray(values, dtype=like.dtype)


def _clip(a: Coords, lo: float, hi: float) -> Coords:
    if isinstance(a, torch.Tensor):
        return a.clamp(lo, hi)
    return np.clip(a, lo, hi)


def _reversed_cols(a: Coords) -> Coords:
    return a.flip(-1) if isinstance(a, torch.Tensor) else a[:, ::-1]


def _image_to_crop(xy: Coords, crop: Sequence, clip: bool) -> Coords:
    """Image pixels -> crop pixels (optionally clipped to the crop)."""
    top, left, h, w = _crop(crop)
    k = xy.shape[1] // 2
    out = xy - _const(xy, [left, top] * k)
    if clip:
        out[:, 0::2] = _clip(out[:, 0::2], 0, w)
        out[:, 1::2] = _clip(out[:, 1::2], 0, h)
    return out


def _crop_to_view(xy: Coords, crop: Sequence, flip: bool,
                  size: Size) -> Coords:
    """Crop pixels -> view pixels (resize, then horizontal flip)."""
    _, _, h, w = _crop(crop)
    H, W = _hw(size)
    k = xy.shape[1] // 2
    out = xy * _const(xy, [W / w, H / h] * k)
    if flip:  # x -> W - x; a box's x1, x2 swap (reversed x columns)
        out[:, 0::2] = W - _reversed_cols(out[:, 0::2])
    return out


def _view_to_image(xy: Coords, crop: Sequence, flip: bool,
                   size: Size) -> Coords:
    """View pixels -> image pixels (undo the flip, the resize, the crop)."""
    top, left, h, w = _crop(crop)
    H, W = _hw(size)
    k = xy.shape[1] // 2
    out = xy * 1  # a copy, in either library
    if flip:
        out[:, 0::2] = W - _reversed_cols(xy[:, 0::2])
    return out * _const(out, [w / W, h / H] * k) + _const(out, [left, top] * k)


def boxes_image_to_view(boxes: Coords, crop: Sequence, flip: bool,
                        size: Size) -> Tuple[Coords, Coords]:
    """Image-pixel boxes -> view-pixel boxes, clipped to the view.

    Args:
        boxes: ``(N, 4)`` ``xyxy`` image pixels (tensor or array).
        crop: ``(top, left, h, w)`` of the view in the image.
        flip (bool): The view is flipped horizontally.
        size: ``H = W`` (int) or ``(H, W)`` of the view.

    Returns:
        tuple: ``(N, 4)`` boxes in view pixels (inside ``[0, W] x [0, H]``)
        and ``(N,)`` the fraction of each box's image area inside the crop.
    """
    b = _check(boxes, 4)
    inside = _image_to_crop(b, crop, clip=True)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    area = _clip(area, 1e-6, None)
    frac = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1]) / area
    return _crop_to_view(inside, crop, flip, size), frac


def boxes_view_to_image(boxes: Coords, crop: Sequence, flip: bool,
                        size: Size) -> Coords:
    """View-pixel boxes -> image-pixel boxes (inverse of
    :func:`boxes_image_to_view` for boxes inside the crop)."""
    return _view_to_image(_check(boxes, 4), crop, flip, size)


def points_image_to_view(points: Coords, crop: Sequence, flip: bool,
                         size: Size) -> Tuple[Coords, Coords]:
    """Image-pixel points -> view-pixel points.

    Returns:
        tuple: ``(N, 2)`` view pixels (not clipped) and the ``(N,)`` bool
        mask of points inside the view (``0 <= x < W``, ``0 <= y < H``).
    """
    p = _check(points, 2)
    out = _crop_to_view(_image_to_crop(p, crop, clip=False), crop, flip, size)
    H, W = _hw(size)
    x, y = out[:, 0], out[:, 1]
    return out, (x >= 0) & (x < W) & (y >= 0) & (y < H)


def points_view_to_image(points: Coords, crop: Sequence, flip: bool,
                         size: Size) -> Coords:
    """View-pixel points -> image-pixel points."""
    return _view_to_image(_check(points, 2), crop, flip, size)


def map_boxes_between_views(boxes: Coords, crop_src: Sequence, flip_src: bool,
                            crop_dst: Sequence, flip_dst: bool,
                            size: Size) -> Tuple[Coords, Coords]:
    """Boxes of one view -> the same image region in another view.

    Returns:
        tuple: ``(N, 4)`` destination-view boxes (clipped to the view) and
        the ``(N,)`` fraction of each box visible in the destination view.
    """
    img = boxes_view_to_image(boxes, crop_src, flip_src, size)
    return boxes_image_to_view(img, crop_dst, flip_dst, size)


def map_points_between_views(points: Coords, crop_src: Sequence,
                             flip_src: bool, crop_dst: Sequence,
                             flip_dst: bool,
                             size: Size) -> Tuple[Coords, Coords]:
    """Points of one view -> the same image points in another view.

    Returns:
        tuple: ``(N, 2)`` destination-view pixels and the ``(N,)`` bool mask
        of points inside the destination view.
    """
    img = points_view_to_image(points, crop_src, flip_src, size)
    return points_image_to_view(img, crop_dst, flip_dst, size)
