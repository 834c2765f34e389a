"""``LoadProposals``: the object proposals of an image, validated."""
import json
from typing import Dict, Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import MMLogger

from mmpretrain.registry import TRANSFORMS
from ccop_plugin.utils.boxes import xywh_to_xyxy


def load_proposal_index(proposal_file: str) -> Dict[str, np.ndarray]:
    """Read a COCO-style proposal JSON into ``file_name -> (N, 4) xywh``.

    Every image of the ``images`` list gets an entry (possibly empty); the
    boxes keep the file's order (the proposal tool writes them best first).

    Raises:
        ValueError: naming the file, when it is not a COCO-style JSON.
    """
    try:
        with open(proposal_file) as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{proposal_file}: not valid JSON ({e})') from None
    if not isinstance(coco, dict) or not isinstance(coco.get('images'), list):
        raise ValueError(f'{proposal_file}: expected a COCO-style dict with an '
                         '"images" list')
    id_to_name = {}
    for im in coco['images']:
        if 'id' not in im or 'file_name' not in im:
            raise ValueError(f'{proposal_file}: image entry without "id" or '
                             f'"file_name": {im!r:.120}')
        id_to_name[im['id']] = im['file_name']
    boxes: Dict[str, list] = {name: [] for name in id_to_name.values()}
    for ann in coco.get('annotations', []):
        name = id_to_name.get(ann.get('image_id'))
        if name is None or 'bbox' not in ann:
            raise ValueError(f'{proposal_file}: annotation {ann.get("id")} '
                             'has no "bbox" or refers to an unknown image')
        boxes[name].append(ann['bbox'])
    return {
        k: np.asarray(v, dtype=np.float32).reshape(-1, 4)
        for k, v in boxes.items()
    }


def sanitize_boxes(boxes_xyxy: np.ndarray, img_shape, max_num: int):
    """Drop invalid boxes, clip the rest to the image, keep the first ones.

    A box is invalid when it has a non-finite coordinate, zero or negative
    width or height, or lies entirely outside the image.

    Args:
        boxes_xyxy (np.ndarray): ``(N, 4)`` boxes.
        img_shape (tuple): ``(height, width)``.
        max_num (int): Most boxes kept (the first valid ones).

    Returns:
        tuple[np.ndarray, int]: ``(M, 4)`` float32 boxes and the number
        dropped as invalid (boxes beyond ``max_num`` are not counted).
    """
    h, w = img_shape[:2]
    b = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    valid = np.isfinite(b).all(axis=1)
    valid &= (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    clipped = b.copy()
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, w)
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, h)
    with np.errstate(invalid='ignore'):
        valid &= (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] >
                                                    clipped[:, 1])
    return clipped[valid][:max_num], int((~valid).sum())


@TRANSFORMS.register_module()
class LoadProposals(BaseTransform):
    """Load the object proposals of an image (CCOP's selective-search boxes).

    Proposals come from ``results['proposals_xywh']`` (put there by
    :class:`ProposalImageDataset`) or, when ``proposal_file`` is given, from
    that COCO-style JSON (the format ``tools/selective_search.py`` writes: one
    category, ``bbox`` as ``[x, y, w, h]``), matched to the image by its
    ``file_name`` (the longest trailing part of ``img_path`` found in the file).

    Invalid boxes (non-finite, zero or negative size, entirely outside the
    image) are dropped and counted, the rest clipped to the image and capped
    at ``max_num``. An image without any valid proposal is no error: its
    whole-image box stands in, and that is counted too. The counts are logged
    every ``log_interval`` images (per data-loader worker); ``self.stats``
    holds the running totals (``images``, ``kept``, ``dropped``,
    ``fallback``) for hooks or tools.

    Required keys: ``img_shape`` (after ``LoadImageFromFile``), ``img_path``
    or ``proposals_xywh``.

    Added keys:

    - proposals (np.ndarray): ``(N, 4)`` float32 ``xyxy`` in image pixels.
    - num_proposals (int): valid proposals kept (0 when the whole image
      stands in).
    - num_dropped_proposals (int): invalid boxes dropped in this image.
    - proposal_fallback (bool): the whole image stands in.

    Args:
        proposal_file (str, optional): COCO-style proposal JSON.
        max_num (int): Most proposals kept per image. Defaults to 100.
        log_interval (int): Log the counters every this many images
            (0 disables). Defaults to 5000.
    """

    _index_cache: Dict[str, Dict[str, np.ndarray]] = {}

    def __init__(self,
                 proposal_file: Optional[str] = None,
                 max_num: int = 100,
                 log_interval: int = 5000) -> None:
        if max_num < 1:
            raise ValueError(f'max_num must be >= 1, got {max_num}')
        self.proposal_file = proposal_file
        self.max_num = max_num
        self.log_interval = log_interval
        self.stats = dict(images=0, kept=0, dropped=0, fallback=0)

    def _lookup(self, img_path: str) -> np.ndarray:
        index = self._index_cache.get(self.proposal_file)
        if index is None:
            index = load_proposal_index(self.proposal_file)
            self._index_cache[self.proposal_file] = index
        parts = img_path.replace('\\', '/').split('/')
        for i in range(len(parts)):
            key = '/'.join(parts[i:])
            if key in index:
                return index[key]
        raise KeyError(f'{img_path}: no entry in proposal file '
                       f'{self.proposal_file}')

    def transform(self, results: dict) -> dict:
        if self.proposal_file is not None:
            raw = self._lookup(results['img_path'])
        elif 'proposals_xywh' in results:
            raw = results['proposals_xywh']
        else:
            raise KeyError(
                f'{results.get("img_path")}: no proposals: use '
                'ProposalImageDataset or give LoadProposals a proposal_file')
        img_shape = results['img_shape']
        boxes, dropped = sanitize_boxes(xywh_to_xyxy(raw), img_shape,
                                        self.max_num)
        results['num_proposals'] = len(boxes)
        fallback = len(boxes) == 0
        if fallback:
            h, w = img_shape[:2]
            boxes = np.array([[0, 0, w, h]], dtype=np.float32)
        results['proposals'] = boxes
        results['num_dropped_proposals'] = dropped
        results['proposal_fallback'] = fallback
        self._count(len(boxes), dropped, fallback)
        return results

    def _count(self, kept: int, dropped: int, fallback: bool) -> None:
        s = self.stats
        s['images'] += 1
        s['kept'] += kept
        s['dropped'] += dropped
        s['fallback'] += int(fallback)
        if self.log_interval and s['images'] % self.log_interval == 0:
            MMLogger.get_current_instance().info(
                f'LoadProposals: {s["images"]} images, {s["kept"]} boxes '
                f'kept, {s["dropped"]} invalid boxes dropped, '
                f'{s["fallback"]} images without a valid proposal (whole '
                'image used)')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(proposal_file='
                f'{self.proposal_file!r}, max_num={self.max_num})')

