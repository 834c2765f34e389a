"""``LoadProposals``: the object proposals of an image, validated.

:func:`read_proposal_file` is the one reader of the COCO-style proposal JSON
(the format ``tools/selective_search.py`` writes) on the training side: both
:class:`ProposalImageDataset` and :class:`LoadProposals` use it, so a file is
checked the same way wherever it enters.
"""
import json
import os
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import MMLogger

from mmpretrain.registry import TRANSFORMS
from ccop_plugin.utils.boxes import xywh_to_xyxy

_NUMBER_TYPES = {int, float}
_FIX_HINT = ('fix or remove these annotations (tools/selective_search.py '
             'writes valid files)')


@dataclass
class ProposalIndex:
    """A validated COCO-style proposal file (see :func:`read_proposal_file`).

    Attributes:
        path (str): The file read.
        names (list[str]): ``file_name`` of every image, in file order.
        boxes (dict): ``file_name -> (N, 4)`` float32 COCO ``xywh`` boxes in
            file order (empty when ``with_boxes=False``).
        num_boxes (np.ndarray): Boxes per image, aligned with ``names``.
        num_valid (np.ndarray): Of those, boxes :class:`LoadProposals` keeps
            (finite, positive size, not entirely outside the image's
            ``width``/``height`` when the file gives them).
        sizes_known (np.ndarray): bool, the image entry has ``width`` and
            ``height`` (boxes outside an image of unknown size are only
            found at run time).
    """
    path: str
    names: List[str]
    boxes: Dict[str, np.ndarray] = field(default_factory=dict)
    num_boxes: np.ndarray = None
    num_valid: np.ndarray = None
    sizes_known: np.ndarray = None

    def position(self) -> Dict[str, int]:
        """``file_name -> index into names``."""
        return {n: i for i, n in enumerate(self.names)}


def valid_box_mask(boxes_xyxy: np.ndarray, height, width) -> np.ndarray:
    """Boxes :func:`sanitize_boxes` keeps: finite, positive width and height,
    not entirely outside the ``height x width`` image.

    ``height`` and ``width`` are numbers or per-box arrays; a NaN size skips
    the outside test for that box (size unknown).
    """
    b = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    h = np.asarray(height, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(b).all(axis=1)
        valid &= (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        # after clipping to [0, w] x [0, h] the box keeps a positive size
        valid &= (b[:, 2] > 0) & (b[:, 3] > 0)
        valid &= np.isnan(w) | ((w > 0) & (b[:, 0] < w))
        valid &= np.isnan(h) | ((h > 0) & (b[:, 1] < h))
    return valid


def _annotation_problem(ann: Any, id_to_pos: Dict[Any, int]) -> Optional[str]:
    """What is wrong with one annotation's structure, or None."""
    if not isinstance(ann, dict):
        return f'is a {type(ann).__name__}, not a dict'
    if 'bbox' not in ann:
        return 'has no "bbox"'
    b = ann['bbox']
    if not isinstance(b, list) or len(b) != 4 or not all(
            type(v) in _NUMBER_TYPES for v in b):
        return ('"bbox" must be a list of 4 numbers [x, y, w, h], got '
                f'{b!r:.60}')
    iid = ann.get('image_id')
    try:
        known = iid in id_to_pos
    except TypeError:
        known = False
    if not known:
        return f'"image_id" {iid!r:.40} is not an id of "images"'
    return None


def _annotation_error(path: str, anns: list, id_to_pos: Dict[Any, int]
                      ) -> ValueError:
    """The error for the malformed annotations of ``anns`` (slow path)."""
    bad = []
    for k, ann in enumerate(anns):
        problem = _annotation_problem(ann, id_to_pos)
        if problem is not None:
            bad.append((k, ann, problem))
    k, ann, problem = bad[0]

    def label(k, ann):
        aid = ann.get('id') if isinstance(ann, dict) else None
        return (f'annotation id {aid!r:.40} (annotations[{k}])'
                if aid is not None else f'annotations[{k}]')

    more = ''
    if len(bad) > 1:
        more = (f'; {len(bad) - 1} more malformed, e.g. ' + ', '.join(
            label(k2, a2) for k2, a2, _ in bad[1:4]))
    return ValueError(f'{path}: {label(k, ann)} {problem}{more}; {_FIX_HINT}')


def _read_images(path: str, images: Any
                 ) -> Tuple[List[str], Dict[Any, int], np.ndarray]:
    """Names, ``id -> position`` and ``(n, 2)`` float ``(h, w)`` (NaN when
    unknown) of a COCO ``images`` list."""
    if not isinstance(images, list):
        raise ValueError(f'{path}: expected a COCO-style dict with an '
                         '"images" list')
    names, id_to_pos = [], {}
    sizes = np.full((len(images), 2), np.nan)
    for k, im in enumerate(images):
        if (not isinstance(im, dict) or 'id' not in im
                or not isinstance(im.get('file_name'), str)
                or not im['file_name']):
            raise ValueError(f'{path}: images[{k}] needs an "id" and a '
                             f'"file_name" string, got {im!r:.120}')
        iid = im['id']
        try:
            dup = iid in id_to_pos
        except TypeError:
            raise ValueError(f'{path}: images[{k}] has an "id" of type '
                             f'{type(iid).__name__}; use a number') from None
        if dup:
            raise ValueError(f'{path}: duplicate image id {iid!r} '
                             f'(images[{id_to_pos[iid]}] and images[{k}])')
        id_to_pos[iid] = k
        names.append(im['file_name'])
        h, w = im.get('height'), im.get('width')
        if (type(h) in _NUMBER_TYPES and type(w) in _NUMBER_TYPES and h > 0
                and w > 0):
            sizes[k] = (h, w)
    if len(set(names)) != len(names):
        seen = set()
        dup = next(n for n in names if n in seen or seen.add(n))
        raise ValueError(f'{path}: duplicate file_name {dup!r} in "images"')
    return names, id_to_pos, sizes


def read_proposal_file(path: str, with_boxes: bool = True) -> ProposalIndex:
    """Read and validate a COCO-style proposal JSON.

    Every image of the ``images`` list gets an entry (possibly empty); each
    image's boxes keep the file's order (the proposal tool writes them best
    first). The structure is checked for every annotation in a few
    vectorised passes (about as long again as parsing the JSON): a ``bbox``
    that is not a list of 4 numbers, an annotation without ``bbox`` or with
    an unknown ``image_id`` is an error naming the file and the annotation
    id. Boxes with valid structure but unusable values (non-finite, empty,
    outside the image) are data, not errors: they are counted in
    ``num_valid`` and dropped by :class:`LoadProposals`.

    Args:
        path (str): The JSON file.
        with_boxes (bool): Read the annotations. False reads only the image
            list (a COCO annotation file whose annotations are not used).

    Raises:
        ValueError: naming the file (and the annotation), when the file is
            not a valid COCO-style proposal file.
    """
    try:
        with open(path) as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(coco, dict):
        raise ValueError(f'{path}: expected a COCO-style dict with an '
                         '"images" list')
    names, id_to_pos, sizes = _read_images(path, coco.get('images'))
    n_img = len(names)
    index = ProposalIndex(path=path, names=names,
                          num_boxes=np.zeros(n_img, np.int64),
                          num_valid=np.zeros(n_img, np.int64),
                          sizes_known=~np.isnan(sizes[:, 0]))
    if not with_boxes:
        return index
    anns = coco.get('annotations', [])
    if not isinstance(anns, list):
        raise ValueError(f'{path}: "annotations" must be a list, got a '
                         f'{type(anns).__name__}')
    n = len(anns)
    # Fast, vectorised structure checks; the slow path names the culprit.
    try:
        bboxes = list(map(itemgetter('bbox'), anns))
        img_ids = list(map(itemgetter('image_id'), anns))
        ok = set(map(type, bboxes)) <= {list}
        ok = ok and bool((np.fromiter(map(len, bboxes), np.int64, n)
                          == 4).all())
        ok = ok and set(map(type, chain.from_iterable(bboxes))
                        ) <= _NUMBER_TYPES
        pos = np.fromiter(map(id_to_pos.get, img_ids, repeat(-1, n)),
                          np.int64, n) if ok else None
        ok = ok and bool((pos >= 0).all())
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise _annotation_error(path, anns, id_to_pos)
    boxes = np.fromiter(chain.from_iterable(bboxes), np.float32,
                        4 * n).reshape(n, 4)
    del bboxes, img_ids, coco, anns
    valid = valid_box_mask(xywh_to_xyxy(boxes), sizes[pos, 0], sizes[pos, 1])
    index.num_boxes = np.bincount(pos, minlength=n_img).astype(np.int64)
    index.num_valid = np.bincount(pos[valid], minlength=n_img).astype(
        np.int64)
    order = np.argsort(pos, kind='stable')
    groups = np.split(boxes[order], np.cumsum(index.num_boxes)[:-1])
    index.boxes = dict(zip(names, groups))
    return index


def load_proposal_index(proposal_file: str) -> Dict[str, np.ndarray]:
    """``file_name -> (N, 4)`` xywh boxes of a proposal JSON.

    Short for ``read_proposal_file(proposal_file).boxes``.
    """
    return read_proposal_file(proposal_file).boxes


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
    valid = valid_box_mask(b, h, w)
    clipped = b[valid]
    clipped[:, 0::2] = np.clip(clipped[:, 0::2], 0, w)
    clipped[:, 1::2] = np.clip(clipped[:, 1::2], 0, h)
    return clipped[:max_num], int((~valid).sum())


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
    ``fallback``) of this process. For counts over all workers and ranks
    use ``ProposalStatsHook`` (it sums the per-sample keys below).

    The file is read by :func:`read_proposal_file` on first use (malformed
    structure is an error naming the file and the annotation) and cached per
    process until it changes on disk.

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

    _index_cache: Dict[tuple, Dict[str, np.ndarray]] = {}

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
        # keyed by path and modification: a file rewritten in place is read
        # again instead of serving its old boxes
        st = os.stat(self.proposal_file)
        key = (self.proposal_file, st.st_mtime_ns, st.st_size)
        index = self._index_cache.get(key)
        if index is None:
            for old in [k for k in self._index_cache
                        if k[0] == self.proposal_file]:
                del self._index_cache[old]
            index = load_proposal_index(self.proposal_file)
            self._index_cache[key] = index
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

