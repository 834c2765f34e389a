"""The probe's data: labelled COCO splits, images, and the two descriptors
without a network (``box_stats``, ``mask_texture``).

Annotation files are read with pycocotools (``COCO(ann_file)``), the reader
mmdet's COCO datasets use, so the probe sees the objects a detector sees.
"""
import contextlib
import io
import json
import math
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

# the configs' data preprocessor (ImageNet statistics, RGB order)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


class ProbeError(ValueError):
    """The probe cannot run on this input (one line naming the file)."""


def split_paths(data_root: str, split: str) -> Tuple[str, str]:
    """Annotation file and image folder of a split of the embedded dataset
    (:mod:`ccop_plugin.datagen` layout: ``meta.json`` when present, else the
    default ``annotations/instances_<split>.json`` + ``images/<split>/``)."""
    from ccop_plugin.datagen import SPLITS
    meta = osp.join(data_root, 'meta.json')
    if osp.isfile(meta):
        try:
            with open(meta) as f:
                info = json.load(f)['splits'][split]
            return (osp.join(data_root, info['ann_file']),
                    osp.join(data_root, info['img_dir']))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if split in SPLITS:
        ann = SPLITS[split][1]
    else:
        ann = f'annotations/instances_{split}.json'
    return osp.join(data_root, ann), osp.join(data_root, 'images', split)


def _read_coco(ann_file: str):
    from pycocotools.coco import COCO
    try:
        # COCO() prints its progress; the probe's output is one line
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(ann_file)
        cats = coco.loadCats(sorted(coco.getCatIds()))
        images = coco.loadImgs(sorted(coco.getImgIds()))
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as e:
        raise ProbeError(f'{ann_file}: not a COCO annotation file ({e})')
    return coco, cats, images


def load_split(data_root: str, split: str) -> Dict:
    """Images, boxes and labels of a labelled COCO split.

    Returns:
        dict: ``images`` (list of paths), ``boxes`` (list of (n, 4) float32
        ``x1, y1, x2, y2`` arrays, one per image), ``labels`` (list of (n, )
        int64 arrays of 0-based category indices), ``anns`` (the annotation
        dicts, one list per image), ``coco`` (the ``COCO`` object),
        ``classes`` (names in category-id order), ``skipped`` (crowd /
        empty boxes) and ``ann_file``.

    Raises:
        ProbeError: Missing or unreadable annotation file, no objects.
    """
    ann_file, img_dir = split_paths(data_root, split)
    if not osp.isfile(ann_file):
        raise ProbeError(f'{ann_file}: no annotation file for split '
                         f'{split!r} (generate the data with '
                         'tools/generate_dataset.py)')
    coco, cats, images = _read_coco(ann_file)
    cat_index = {c['id']: i for i, c in enumerate(cats)}
    out = dict(images=[], boxes=[], labels=[], anns=[], coco=coco,
               classes=[c['name'] for c in cats], skipped=0,
               ann_file=ann_file)
    for im in images:
        keep = []
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[im['id']])):
            x, y, w, h = a.get('bbox', (0, 0, 0, 0))
            if (a.get('iscrowd', 0) or w < 1 or h < 1
                    or a.get('category_id') not in cat_index):
                out['skipped'] += 1
                continue
            keep.append(a)
        if not keep:
            continue
        xywh = np.asarray([a['bbox'] for a in keep], np.float64)
        out['images'].append(osp.join(img_dir, im['file_name']))
        out['boxes'].append(np.concatenate(
            [xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32))
        out['labels'].append(np.asarray(
            [cat_index[a['category_id']] for a in keep], np.int64))
        out['anns'].append(keep)
    if not out['images']:
        raise ProbeError(f'{ann_file}: no labelled objects in split '
                         f'{split!r}')
    return out


def read_image(path: str) -> np.ndarray:
    """BGR uint8 image, or :class:`ProbeError` naming the file."""
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ProbeError(f'{path}: missing or unreadable image')
    return img


def to_input(imgs: Sequence[np.ndarray]) -> torch.Tensor:
    """``(B, 3, H, W)`` float network input of same-size BGR images: RGB,
    normalised with the configs' mean and std."""
    batch = torch.from_numpy(np.stack(imgs)[..., ::-1].copy())
    batch = batch.permute(0, 3, 1, 2).float()
    return (batch - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD).view(1, 3, 1, 1)


def box_stats(img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Mean and std of each colour channel inside each box, its w and h."""
    out = []
    h, w = img.shape[:2]
    for x1, y1, x2, y2 in boxes:
        xa, ya = int(max(0, math.floor(x1))), int(max(0, math.floor(y1)))
        xb, yb = int(min(w, math.ceil(x2))), int(min(h, math.ceil(y2)))
        crop = img[ya:max(yb, ya + 1), xa:max(xb, xa + 1)].reshape(-1, 3)
        crop = crop.astype(np.float64)
        out.append(np.concatenate([crop.mean(0), crop.std(0),
                                   [x2 - x1, y2 - y1]]))
    return np.asarray(out, np.float64)


def _object_mask(coco, ann: Dict, shape: Tuple[int, int],
                 where: str) -> np.ndarray:
    if not ann.get('segmentation'):
        raise ProbeError(f'{where}: an object has no segmentation '
                         '(mask_texture needs masks)')
    img = coco.imgs.get(ann['image_id'], {})
    if not img.get('height') or not img.get('width'):
        img.update(height=shape[0], width=shape[1])
    try:
        return coco.annToMask(ann).astype(np.uint8)
    except (AttributeError, TypeError, ValueError, KeyError,
            IndexError) as e:
        raise ProbeError(f'{where}: unreadable segmentation ({e})')


def _texture_descriptor(g, gx, gy, lap, img, m) -> np.ndarray:
    mag = np.hypot(gx[m], gy[m])
    ang = np.mod(np.arctan2(gy[m], gx[m]), np.pi)
    hog, _ = np.histogram(ang, 8, (0, np.pi), weights=mag)
    hog = np.sort(hog)[::-1] / (hog.sum() + 1e-6)
    gv = g[m]
    hist, _ = np.histogram((gv - gv.min()) / (np.ptp(gv) + 1e-6), 8, (0, 1))
    return np.concatenate([
        [gv.std(), mag.mean(), mag.std(), lap[m].mean(), lap[m].std(),
         (mag > 50).mean()], hog, hist / len(gv),
        img[m].astype(np.float64).std(0)])


def mask_texture(img: np.ndarray, coco, anns: List[Dict],
                 where: str) -> np.ndarray:
    """Texture of each object's visible interior, without its outline:
    grey-level spread and 8-bin histogram, gradient magnitude and Laplacian
    statistics, the 8-bin gradient-orientation histogram sorted by weight
    (so that the texture's rotation does not matter) and the spread of each
    colour channel."""
    import cv2
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F))
    out = []
    for ann in anns:
        full = _object_mask(coco, ann, img.shape[:2], where)
        m = cv2.erode(full, np.ones((3, 3), np.uint8)).astype(bool)
        if m.sum() < 5:
            m = full.astype(bool)
        if not m.any():
            m = np.ones_like(full, bool)
        out.append(_texture_descriptor(g, gx, gy, lap, img, m))
    return np.asarray(out, np.float64)
