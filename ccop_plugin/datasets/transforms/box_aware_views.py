"""``BoxAwareMultiView``: random-resized-crop views whose boxes correspond."""
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmpretrain.registry import TRANSFORMS

#: CCOP's photometric view augmentation (reference ``r50_d2.py``): MoCo v2's
#: colour jitter with saturation 0.2, p=0.8; greyscale p=0.2; Gaussian blur
#: sigma 0.1-2, p=0.5; as mmpretrain transforms. Pass it as
#: ``transforms=[CCOP_PHOTOMETRIC]`` (configs spell it out).
CCOP_PHOTOMETRIC = [
    dict(
        type='RandomApply',
        transforms=[
            dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                 saturation=0.2, hue=0.1)
        ],
        prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0),
         magnitude_std='inf', prob=0.5),
]


def sample_crop(img_h: int, img_w: int, scale: Tuple[float, float],
                ratio: Tuple[float, float]) -> Tuple[int, int, int, int]:
    """``RandomResizedCrop`` parameters ``(top, left, h, w)``.

    The sampling of torchvision / mmpretrain: area fraction uniform in
    ``scale``, log-uniform aspect ratio, 10 attempts, then a central crop.
    Uses NumPy's global generator, as mmpretrain's transforms do.
    """
    area = img_h * img_w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = np.random.uniform(*scale) * area
        aspect = math.exp(np.random.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= img_w and 0 < h <= img_h:
            top = np.random.randint(0, img_h - h + 1)
            left = np.random.randint(0, img_w - w + 1)
            return top, left, h, w
    in_ratio = img_w / img_h
    if in_ratio < min(ratio):
        w, h = img_w, int(round(img_w / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(img_h * max(ratio))), img_h
    else:
        w, h = img_w, img_h
    return (img_h - h) // 2, (img_w - w) // 2, h, w


def crop_boxes(boxes: np.ndarray, crop: Tuple[int, int, int, int],
               size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of a crop resized to ``size`` x ``size``.

    Args:
        boxes (np.ndarray): ``(N, 4)`` ``xyxy`` in image pixels.
        crop (tuple): ``(top, left, h, w)``.
        size (int): Output side.

    Returns:
        tuple: ``(N, 4)`` boxes in output pixels (clipped to the crop), the
        fraction of each box's area inside the crop, and each box's area in
        output pixels.
    """
    top, left, h, w = crop
    b = boxes - np.array([left, top, left, top], np.float32)
    b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
    inside = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    orig = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    frac = inside / np.maximum(orig, 1e-6)
    b *= np.array([size / w, size / h, size / w, size / h], np.float32)
    out_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return b, frac, out_area


@TRANSFORMS.register_module()
class BoxAwareMultiView(BaseTransform):
    """Views of an image whose proposal boxes follow every geometric step.

    CCOP's two-view augmentation (reference ``ContrastiveBox`` dataset): each
    view is a RandomResizedCrop to ``size`` (area ``scale``, aspect
    ``ratio``), a horizontal flip with ``flip_prob`` and the photometric
    ``transforms`` (MoCo v2's colour jitter, greyscale and blur in CCOP's
    configs). A proposal is kept only when, in *every* view, at least
    ``part_thr`` of its area lies inside the crop and its area in the output
    is at least ``area_thr`` pixels; so row ``i`` of ``view_bboxes`` is the
    same proposal in all views. Up to ``max_tries`` sets of crops are drawn
    until ``min_num_boxes`` proposals survive; otherwise the set that kept
    the most is used (possibly with none: models must cope).

    Differences from the released code: the reference draws each view's crop
    on its own (10 tries each, checking only that view) and intersects
    afterwards, so its "at least one box" holds per view but not for both
    views together; here the tries are over view pairs, so the guarantee
    holds for the boxes actually returned. The reference's
    ``ScaleInstanceContrastAug`` applies ``area_thr`` (144) to both views'
    boxes in output pixels, while its ``AdvancedInstanceContrastAug`` stores
    it unused; ``area_thr=None`` (or 0) disables it. The reference compares
    strictly (``> part_thr``, ``> area_thr``) where this class keeps boxes
    *at* the threshold; it also clamps the returned boxes to ``size - 1``
    (boxes here end at ``size``, a pixel-edge convention for RoIAlign), and
    swaps the two views at random (immaterial for a symmetric loss).

    Required keys: ``img``, ``proposals`` ((N, 4) ``xyxy``, from
    :class:`LoadProposals`).

    Modified keys: ``img`` (a list of ``num_views`` images), ``img_shape``.

    Added keys: ``view_bboxes`` (float32 ``(num_views, M, 4)`` ``xyxy`` in
    each view's pixels), ``view_flips`` (bool per view), ``view_crops``
    (``(num_views, 4)`` crop ``top, left, h, w`` in the input image).

    Args:
        num_views (int): Views. Defaults to 2.
        size (int): Output side. Defaults to 224.
        scale (tuple): Area fraction range of the crops. Defaults to
            ``(0.1, 1.0)``.
        ratio (tuple): Aspect ratio range. Defaults to ``(3/4, 4/3)``.
        part_thr (float): Least fraction of a box inside every crop.
            Defaults to 0.6.
        area_thr (float, optional): Least box area in output pixels in every
            view; None or 0 disables. Defaults to 144.
        min_num_boxes (int): Boxes wanted. Defaults to 1.
        max_tries (int): Crop sets tried. Defaults to 10.
        max_num_boxes (int): Most boxes returned. Defaults to 100.
        flip_prob (float): Horizontal flip probability per view.
        transforms (list, optional): Photometric pipelines: one list applied
            to every view, or one list per view (mmpretrain ``MultiView``
            convention). They must not move pixels. Defaults to None (no
            photometric change); CCOP's values are ``[CCOP_PHOTOMETRIC]``.
        interpolation (str): ``'bilinear'`` or ``'bicubic'`` resize.
    """

    def __init__(self,
                 num_views: int = 2,
                 size: int = 224,
                 scale: Tuple[float, float] = (0.1, 1.0),
                 ratio: Tuple[float, float] = (3. / 4., 4. / 3.),
                 part_thr: float = 0.6,
                 area_thr: Optional[float] = 144.,
                 min_num_boxes: int = 1,
                 max_tries: int = 10,
                 max_num_boxes: int = 100,
                 flip_prob: float = 0.5,
                 transforms: Optional[Sequence] = None,
                 interpolation: str = 'bilinear') -> None:
        if num_views < 1 or max_tries < 1:
            raise ValueError('num_views and max_tries must be >= 1')
        self.num_views = num_views
        self.size = int(size)
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.part_thr = part_thr
        self.area_thr = area_thr or 0.
        self.min_num_boxes = min_num_boxes
        self.max_tries = max_tries
        self.max_num_boxes = max_num_boxes
        self.flip_prob = flip_prob
        self.interpolation = dict(
            bilinear=cv2.INTER_LINEAR, bicubic=cv2.INTER_CUBIC)[interpolation]
        transforms = list(transforms or [])
        if transforms and isinstance(transforms[0], dict):
            transforms = [transforms]  # one pipeline for every view
        if len(transforms) > 1 and len(transforms) != num_views:
            raise ValueError(f'{len(transforms)} pipelines for {num_views} '
                             'views')
        self.pipelines: List[Optional[Compose]] = [
            Compose(t) for t in transforms
        ] or [None]

    def _choose_crops(self, img_h: int, img_w: int, boxes: np.ndarray):
        """Crop sets until enough boxes survive in every view."""
        need = min(self.min_num_boxes, len(boxes))
        best = None
        for _ in range(self.max_tries):
            crops = [
                sample_crop(img_h, img_w, self.scale, self.ratio)
                for _ in range(self.num_views)
            ]
            keep = np.ones(len(boxes), bool)
            out = []
            for crop in crops:
                b, frac, area = crop_boxes(boxes, crop, self.size)
                keep &= (frac >= self.part_thr) & (area >= self.area_thr)
                out.append(b)
            n = int(keep.sum())
            if best is None or n > best[0]:
                best = (n, crops, out, keep)
            if n >= need:
                break
        return best[1], best[2], best[3]

    def transform(self, results: dict) -> dict:
        img = results['img']
        img_h, img_w = img.shape[:2]
        boxes = np.asarray(results['proposals'], np.float32).reshape(-1, 4)
        crops, view_boxes, keep = self._choose_crops(img_h, img_w, boxes)
        idx = np.flatnonzero(keep)[:self.max_num_boxes]
        views, out_boxes, flips = [], [], []
        for v, ((top, left, h, w), b) in enumerate(zip(crops, view_boxes)):
            view = cv2.resize(img[top:top + h, left:left + w],
                              (self.size, self.size),
                              interpolation=self.interpolation)
            b = b[idx].copy()
            flip = np.random.rand() < self.flip_prob
            if flip:
                view = np.ascontiguousarray(view[:, ::-1])
                b[:, [0, 2]] = self.size - b[:, [2, 0]]
            pipeline = self.pipelines[v % len(self.pipelines)]
            if pipeline is not None:
                view = pipeline(
                    dict(img=view, img_shape=view.shape[:2],
                         ori_shape=view.shape[:2]))['img']
            views.append(view)
            out_boxes.append(b)
            flips.append(bool(flip))
        results['img'] = views
        results['img_shape'] = (self.size, self.size)
        results['view_bboxes'] = np.stack(out_boxes).astype(np.float32)
        results['view_flips'] = flips
        results['view_crops'] = np.array(crops, np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_views={self.num_views}, '
                f'size={self.size}, scale={self.scale}, ratio={self.ratio}, '
                f'part_thr={self.part_thr}, area_thr={self.area_thr}, '
                f'min_num_boxes={self.min_num_boxes}, '
                f'max_tries={self.max_tries}, flip_prob={self.flip_prob})')
