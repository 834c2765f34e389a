"""The COCO-style proposal file: its one reader and writer.

``tools/selective_search.py``, ``tools/heatmap_proposals.py`` and
:class:`HeatmapProposalHook` write it; :class:`ProposalImageDataset`, the
recall evaluation and the visualiser read it. The format::

    {"info": {...},
     "images": [{"id": 1, "file_name": "a/b.jpg", "width": 640,
                 "height": 480}, ...],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                      "bbox": [x, y, w, h], "area": w * h,
                      "iscrowd": 0}, ...],
     "categories": [{"id": 1, "name": "proposal", ...}]}

Each image's boxes are listed best first; ``file_name`` is the image path
relative to the image folder (an absolute name, or one climbing out with
``..``, is refused). The file is UTF-8 JSON. :func:`read_proposal_file`
checks the structure of every entry (an error names the file and the entry);
:func:`valid_box_mask` / :func:`sanitize_boxes` are the rule for which boxes
of a valid file are usable.
"""
import json
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ccop_plugin.utils.boxes import xywh_to_xyxy
from ccop_plugin.utils.coco_file import read_coco
from ccop_plugin.utils.fileio import atomic_path
from .proposal_checks import (  # noqa: F401 (leaves_folder: public)
    NUMBER_TYPES,
    annotation_error,
    leaves_folder,
    read_images,
    to_float,
)

CATEGORIES = [{'id': 1, 'name': 'proposal', 'supercategory': 'proposal'}]


@dataclass
class ProposalIndex:
    """A validated COCO-style proposal file (see :func:`read_proposal_file`).

    Attributes:
        path (str): The file read.
        names (list[str]): ``file_name`` of every image, in file order.
        ids (list): The images' ``id``, aligned with ``names``.
        boxes (dict): ``file_name -> (N, 4)`` float32 COCO ``xywh`` boxes in
            file order (empty when ``with_boxes=False``).
        num_boxes (np.ndarray): Boxes per image, aligned with ``names``.
        num_valid (np.ndarray): Of those, boxes :func:`valid_box_mask`
            keeps (finite, positive size, not entirely outside the image's
            ``width``/``height`` when the file gives them).
        sizes (np.ndarray): ``(n, 2)`` float ``(height, width)`` of every
            image, NaN when the file does not give them.
        categories (list): The distinct ``category_id`` of the annotations
            (proposal files have one class); empty when ``with_boxes=False``.
    """
    path: str
    names: List[str]
    ids: List[Any] = field(default_factory=list)
    boxes: Dict[str, np.ndarray] = field(default_factory=dict)
    num_boxes: np.ndarray = None
    num_valid: np.ndarray = None
    sizes: np.ndarray = None
    categories: List[Any] = field(default_factory=list)

    @property
    def sizes_known(self) -> np.ndarray:
        """bool per image: the entry has ``width`` and ``height`` (boxes
        outside an image of unknown size are only found at run time)."""
        return ~np.isnan(self.sizes[:, 0])

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
    ``num_valid`` and dropped by :func:`sanitize_boxes` (``LoadProposals``);
    an integer coordinate too large for any float counts as non-finite.

    Args:
        path (str): The JSON file.
        with_boxes (bool): Read the annotations. False reads only the image
            list (a COCO annotation file whose annotations are not used).

    Raises:
        ValueError: naming the file (and the annotation), when the file is
            not a valid COCO-style proposal file.
        FileNotFoundError: the file does not exist.
    """
    coco = read_coco(path, categories='ignore')
    names, id_to_pos, sizes = read_images(path, coco.get('images'))
    n_img = len(names)
    index = ProposalIndex(path=path, names=names, ids=list(id_to_pos),
                          num_boxes=np.zeros(n_img, np.int64),
                          num_valid=np.zeros(n_img, np.int64), sizes=sizes)
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
                        ) <= NUMBER_TYPES
        pos = np.fromiter(map(id_to_pos.get, img_ids, repeat(-1, n)),
                          np.int64, n) if ok else None
        ok = ok and bool((pos >= 0).all())
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise annotation_error(path, anns, id_to_pos)
    try:
        boxes = np.fromiter(chain.from_iterable(bboxes), np.float32, 4 * n)
    except OverflowError:  # an integer beyond any float: +-inf
        boxes = np.fromiter(map(to_float, chain.from_iterable(bboxes)),
                            np.float32, 4 * n)
    boxes = boxes.reshape(n, 4)
    index.categories = _categories(anns)
    del bboxes, img_ids, coco, anns
    valid = valid_box_mask(xywh_to_xyxy(boxes), sizes[pos, 0], sizes[pos, 1])
    index.num_boxes = np.bincount(pos, minlength=n_img).astype(np.int64)
    index.num_valid = np.bincount(pos[valid], minlength=n_img).astype(
        np.int64)
    order = np.argsort(pos, kind='stable')
    groups = np.split(boxes[order], np.cumsum(index.num_boxes)[:-1])
    index.boxes = dict(zip(names, groups))
    return index


def _categories(anns: List[dict]) -> List[Any]:
    ids = set()
    for a in anns:
        ids.add(a.get('category_id', 1))
        if len(ids) > 1:  # enough to tell proposals from labels
            break
    return sorted(ids, key=str)


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


def read_image_proposals(path: str, file_name: Optional[str] = None,
                         image_id: Optional[Any] = None,
                         index: Optional[int] = None
                         ) -> Tuple[Dict[str, Any], np.ndarray]:
    """One image's entry and ``(N, 4)`` ``xywh`` boxes of a proposal file.

    Select the image by ``file_name``, ``image_id`` or position ``index`` in
    the ``images`` list (default: the first image). The file is read and
    checked by :func:`read_proposal_file`.

    Returns:
        tuple: ``(dict(id, file_name[, width, height]), boxes)``; boxes in
        file order, float64.

    Raises:
        ValueError: one line naming the file: not a valid proposal file, no
            images, or no image matches.
    """
    idx = read_proposal_file(path)
    if not idx.names:
        raise ValueError(f'{path}: no images')
    if file_name is not None:
        found = [k for k, n in enumerate(idx.names) if n == file_name]
        what = f'file_name {file_name!r}'
    elif image_id is not None:
        found = [k for k, i in enumerate(idx.ids) if i == image_id]
        what = f'image id {image_id}'
    else:
        index = index or 0
        n = len(idx.names)
        found = [index % n] if -n <= index < n else []
        what = f'index {index}'
    if not found:
        raise ValueError(f'{path}: no image with {what}')
    k = found[0]
    name = idx.names[k]
    entry = dict(id=idx.ids[k], file_name=name)
    if idx.sizes_known[k]:
        entry.update(height=int(idx.sizes[k, 0]), width=int(idx.sizes[k, 1]))
    return entry, idx.boxes[name].astype(np.float64)


def fmt_num(v: float) -> Any:
    """Round to 1/100 px; integral values become ``int`` (compact JSON)."""
    v = round(float(v), 2)
    return int(v) if v.is_integer() else v


def write_proposal_file(out: str, entries: Sequence[Any],
                        results: Dict[str, Dict[str, Any]],
                        info: Optional[Dict[str, Any]] = None
                        ) -> Dict[str, int]:
    """Write a proposal file atomically (streamed).

    Args:
        out (str): The JSON file; replaced only once it is complete.
        entries: The images in file order: objects with ``id`` and
            ``file_name`` (e.g. ``ccop_plugin.proposals.sources.ImageEntry``).
        results (dict): ``file_name -> dict(width, height, boxes)`` with
            ``boxes`` an ``(N, 4)`` array of COCO ``xywh``, best first.
            Images without a result are left out.
        info (dict, optional): The file's ``info``.

    Annotation ids are ``1..M`` in image order; numbers are rounded to
    1/100 px (:func:`fmt_num`).

    Returns:
        dict: ``images`` and ``annotations`` written.
    """
    with atomic_path(out) as tmp:  # disk full, interrupted: no tmp file
        return _write_proposal_json(tmp, entries, results, info)


def _write_proposal_json(tmp: str, entries: Sequence[Any],
                         results: Dict[str, Dict[str, Any]],
                         info: Optional[Dict[str, Any]]) -> Dict[str, int]:
    n_img = n_ann = 0
    dumps = json.dumps
    with open(tmp, 'w') as f:
        f.write('{"info":' + dumps(info or {}, separators=(',', ':')))
        f.write(',\n"images":[')
        for e in entries:
            rec = results.get(e.file_name)
            if rec is None:
                continue
            f.write((',\n' if n_img else '\n') + dumps(
                {'id': e.id, 'file_name': e.file_name,
                 'width': int(rec['width']), 'height': int(rec['height'])},
                separators=(',', ':')))
            n_img += 1
        f.write('],\n"annotations":[')
        for e in entries:
            rec = results.get(e.file_name)
            if rec is None:
                continue
            parts = []
            for x, y, w, h in rec['boxes'].tolist():
                n_ann += 1
                parts.append(
                    '{"id":%d,"image_id":%d,"category_id":1,"bbox":[%s,%s,%s,'
                    '%s],"area":%s,"iscrowd":0}' % (
                        n_ann, e.id, fmt_num(x), fmt_num(y), fmt_num(w),
                        fmt_num(h), fmt_num(w * h)))
            if parts:
                f.write((',\n' if n_ann > len(parts) else '\n') +
                        ',\n'.join(parts))
        f.write('],\n"categories":' + dumps(CATEGORIES) + '}\n')
    return dict(images=n_img, annotations=n_ann)
