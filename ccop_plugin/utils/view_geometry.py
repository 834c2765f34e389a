"""Where image points and boxes land in a view, and back.

The one implementation of the view geometry of the plugin: the data pipeline
(``BoxAwareMultiView``), ``HeatmapCCOP`` and PLRC all map through it.

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

Tensors stay on their device and dtype (the model path runs on the batch's
device with no NumPy round trip); NumPy arrays are mapped through
``torch.from_numpy`` and returned as NumPy arrays (the data pipeline).
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


def _as_tensor(coords: Coords, width: int) -> Tuple[torch.Tensor, bool]:
    """``(N, width)`` float tensor and whether the input was NumPy."""
    is_np = isinstance(coords, np.ndarray)
    if is_np:
        arr = coords if coords.flags.writeable else coords.copy()
        t = torch.from_numpy(arr)
    else:
        t = coords
    if not t.is_floating_point():
        t = t.float()
    if t.dim() != 2 or t.shape[1] != width:
        if t.numel() == 0:
            t = t.reshape(0, width)
        else:
            raise ValueError(f'expected (N, {width}) coordinates, got '
                             f'{tuple(t.shape)}')
    return t, is_np


def _back(t: torch.Tensor, is_np: bool) -> Coords:
    return t.numpy() if is_np else t


def _image_to_crop(xy: torch.Tensor, crop: Sequence,
                   clip: bool) -> torch.Tensor:
    """Image pixels -> crop pixels (optionally clipped to the crop)."""
    top, left, h, w = _crop(crop)
    k = xy.shape[1] // 2
    out = xy - xy.new_tensor([left, top] * k)
    if clip:
        out[:, 0::2] = out[:, 0::2].clamp(0, w)
        out[:, 1::2] = out[:, 1::2].clamp(0, h)
    return out


def _crop_to_view(xy: torch.Tensor, crop: Sequence, flip: bool,
                  size: Size) -> torch.Tensor:
    """Crop pixels -> view pixels (resize, then horizontal flip)."""
    _, _, h, w = _crop(crop)
    H, W = _hw(size)
    k = xy.shape[1] // 2
    out = xy * xy.new_tensor([W / w, H / h] * k)
    if flip:  # x -> W - x; a box's x1, x2 swap (reversed x columns)
        out[:, 0::2] = W - out[:, 0::2].flip(-1)
    return out


def _view_to_image(xy: torch.Tensor, crop: Sequence, flip: bool,
                   size: Size) -> torch.Tensor:
    """View pixels -> image pixels (undo the flip, the resize, the crop)."""
    top, left, h, w = _crop(crop)
    H, W = _hw(size)
    k = xy.shape[1] // 2
    out = xy.clone()
    if flip:
        out[:, 0::2] = W - xy[:, 0::2].flip(-1)
    return (out * out.new_tensor([w / W, h / H] * k) +
            out.new_tensor([left, top] * k))


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
    b, is_np = _as_tensor(boxes, 4)
    inside = _image_to_crop(b, crop, clip=True)
    area = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).clamp_min(1e-6)
    frac = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1]) / area
    out = _crop_to_view(inside, crop, flip, size)
    return _back(out, is_np), _back(frac, is_np)


def boxes_view_to_image(boxes: Coords, crop: Sequence, flip: bool,
                        size: Size) -> Coords:
    """View-pixel boxes -> image-pixel boxes (inverse of
    :func:`boxes_image_to_view` for boxes inside the crop)."""
    b, is_np = _as_tensor(boxes, 4)
    return _back(_view_to_image(b, crop, flip, size), is_np)


def points_image_to_view(points: Coords, crop: Sequence, flip: bool,
                         size: Size) -> Tuple[Coords, Coords]:
    """Image-pixel points -> view-pixel points.

    Returns:
        tuple: ``(N, 2)`` view pixels (not clipped) and the ``(N,)`` bool
        mask of points inside the view (``0 <= x < W``, ``0 <= y < H``).
    """
    p, is_np = _as_tensor(points, 2)
    out = _crop_to_view(_image_to_crop(p, crop, clip=False), crop, flip, size)
    H, W = _hw(size)
    x, y = out[:, 0], out[:, 1]
    valid = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    return _back(out, is_np), _back(valid, is_np)


def points_view_to_image(points: Coords, crop: Sequence, flip: bool,
                         size: Size) -> Coords:
    """View-pixel points -> image-pixel points."""
    p, is_np = _as_tensor(points, 2)
    return _back(_view_to_image(p, crop, flip, size), is_np)


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
