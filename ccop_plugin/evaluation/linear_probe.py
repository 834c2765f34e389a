"""Object-level linear probe: how well frozen features name the objects.

The backbone (and FPN when the checkpoint has one) of a pre-training
checkpoint is frozen; the features of every ground-truth box of a labelled
COCO split are pooled with RoIAlign; a multinomial logistic regression is
fitted on the train split and scored on a held-out split. The score is the
object classification accuracy.

* Checkpoints: anything :func:`~ccop_plugin.converters.convert_to_mmdet`
  reads (CCOP, mmpretrain MoCo v2 / DenseCL, bare torchvision / mmdet ResNet
  state dicts, Detectron2 layouts), or ``None`` for a random initialisation
  (seeded; ResNet-18 + FPN like the demo's detector unless told otherwise).
* Features: with an FPN, RoIAlign on the FPN level picked by box size
  (mmdet's rule, ``finest_scale`` 56); without one, RoIAlign on C4 and C5,
  concatenated. Each RoI is average-pooled to ``pool x pool`` cells.
* Classifier: features standardised with the train statistics, then
  full-batch L-BFGS on the cross-entropy plus ``weight_decay * |W|^2 / 2``
  in float64, from zero weights: the fit is deterministic, so a run is a
  pure function of the checkpoint, the data and (for random init) the seed.
* ``features='box_stats'`` replaces the network by a trivial descriptor of
  the box (mean and standard deviation of each colour channel inside the box,
  box width and height): if that already scores near 100 %, the classes can
  be read off colour or size and the data saturates the probe.
  ``features='mask_texture'`` describes only the texture inside each
  object's visible mask (eroded: no outline, no background, no shape): a
  high score there means the class can be read off texture alone.
"""
import json
import math
import os.path as osp
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

# the configs' data preprocessor (ImageNet statistics, RGB order)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
FEATURES = ('backbone', 'box_stats', 'mask_texture')


class ProbeError(ValueError):
    """The probe cannot run on this input (one line naming the file)."""


# --------------------------------------------------------------------- data
def _split_paths(data_root: str, split: str) -> Tuple[str, str]:
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


def load_split(data_root: str, split: str) -> Dict:
    """Images, boxes and labels of a labelled COCO split.

    Returns:
        dict: ``images`` (list of paths), ``boxes`` (list of (n, 4) float32
        ``x1, y1, x2, y2`` arrays, one per image), ``labels`` (list of (n, )
        int64 arrays of 0-based category indices), ``classes`` (names in
        category-id order) and ``skipped`` (crowd / empty boxes).

    Raises:
        ProbeError: Missing or unreadable annotation file, no objects.
    """
    ann_file, img_dir = _split_paths(data_root, split)
    if not osp.isfile(ann_file):
        raise ProbeError(f'{ann_file}: no annotation file for split '
                         f'{split!r} (generate the data with '
                         'tools/generate_dataset.py)')
    try:
        with open(ann_file) as f:
            coco = json.load(f)
        cats = sorted(coco['categories'], key=lambda c: c['id'])
        images = coco['images']
        anns = coco.get('annotations', [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProbeError(f'{ann_file}: not a COCO annotation file ({e})')
    cat_index = {c['id']: i for i, c in enumerate(cats)}
    per_image: Dict[int, List] = {im['id']: [] for im in images}
    skipped = 0
    for a in anns:
        x, y, w, h = a.get('bbox', (0, 0, 0, 0))
        if (a.get('iscrowd', 0) or w < 1 or h < 1
                or a.get('category_id') not in cat_index
                or a.get('image_id') not in per_image):
            skipped += 1
            continue
        per_image[a['image_id']].append(
            ((x, y, x + w, y + h, cat_index[a['category_id']]),
             a.get('segmentation')))
    out = dict(images=[], boxes=[], labels=[], segmentations=[],
               classes=[c['name'] for c in cats], skipped=skipped,
               ann_file=ann_file)
    for im in sorted(images, key=lambda im: im['id']):
        objs = per_image[im['id']]
        if not objs:
            continue
        arr = np.asarray([o[0] for o in objs], np.float64)
        out['segmentations'].append(
            [(o[1], im.get('height'), im.get('width')) for o in objs])
        out['images'].append(osp.join(img_dir, im['file_name']))
        out['boxes'].append(arr[:, :4].astype(np.float32))
        out['labels'].append(arr[:, 4].astype(np.int64))
    if not out['images']:
        raise ProbeError(f'{ann_file}: no labelled objects in split '
                         f'{split!r}')
    return out


def _read_image(path: str) -> np.ndarray:
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ProbeError(f'{path}: missing or unreadable image')
    return img  # BGR uint8


# ------------------------------------------------------------------ encoder
def build_encoder(checkpoint: Optional[Union[str, Mapping]] = None,
                  seed: int = 0,
                  depth: int = 18,
                  fpn_channels: Optional[int] = 128,
                  with_fpn: bool = True
                  ) -> Tuple[torch.nn.Module, Optional[torch.nn.Module],
                             Dict]:
    """Frozen mmdet ResNet (+ FPN) with the weights of ``checkpoint``.

    Args:
        checkpoint (str | Mapping | None): A checkpoint the converters read
            (:func:`~ccop_plugin.converters.convert_to_mmdet`); ``None``:
            random initialisation, drawn from ``seed`` (the global torch RNG
            is left untouched).
        seed (int): Seed of the random initialisation.
        depth (int): ResNet depth of the random initialisation.
        fpn_channels (int | None): FPN width of the random initialisation
            (BN in the FPN, like the demo's detector); None: no FPN.
        with_fpn (bool): Use the checkpoint's FPN when it has one (False:
            the backbone's C4 + C5 even then).

    Returns:
        tuple: ``(backbone, neck_or_None, info)``, both in eval mode with
        ``requires_grad`` off; ``info`` says what was loaded.

    Raises:
        ProbeError: The checkpoint has no ResNet of a known depth, or keys of
            the backbone are missing.
    """
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN

    from ccop_plugin.converters import (
        ConversionError,
        convert_to_mmdet,
        describe_fpn,
        infer_resnet_depth,
    )
    from ccop_plugin.utils.checkpoint_safety import CheckpointError

    sd, fpn, source = None, None, 'random init'
    if checkpoint is not None:
        name = checkpoint if isinstance(checkpoint, str) else '<state dict>'
        try:
            res = convert_to_mmdet(checkpoint)
        except (ConversionError, CheckpointError) as e:
            raise ProbeError(str(e))
        sd = res.state_dict
        depth = infer_resnet_depth(sd)
        if depth is None:
            raise ProbeError(f'{name}: no ResNet of a known depth under '
                             'backbone.')
        fpn = describe_fpn(sd) if with_fpn else None
        source = res.source
    elif fpn_channels and with_fpn:
        fpn = dict(in_channels=None, out_channels=fpn_channels, norm='bn')
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = ResNet(depth=depth, out_indices=(0, 1, 2, 3),
                          norm_eval=True)
        neck = None
        if fpn is not None:
            in_ch = fpn['in_channels'] or _stage_channels(depth)
            norm = dict(type='BN') if fpn['norm'] == 'bn' else (
                dict(type='GN', num_groups=32) if fpn['norm'] == 'gn'
                else None)
            neck = FPN(in_ch, fpn['out_channels'], num_outs=len(in_ch),
                       norm_cfg=norm)
    info = dict(source=source, depth=depth, fpn=fpn is not None,
                seed=int(seed) if checkpoint is None else None)
    if sd is not None:
        for prefix, mod in (('backbone.', backbone), ('neck.', neck)):
            if mod is None:
                continue
            part = {k[len(prefix):]: v for k, v in sd.items()
                    if k.startswith(prefix)}
            missing, _ = mod.load_state_dict(part, strict=False)
            missing = [k for k in missing
                       if not k.endswith('num_batches_tracked')]
            if missing:
                raise ProbeError(
                    f'{source}: {len(missing)} {prefix[:-1]} weights '
                    f'missing (e.g. {prefix}{missing[0]})')
        info['loaded'] = len(sd)
    for mod in (backbone, neck):
        if mod is not None:
            mod.eval()
            mod.requires_grad_(False)
    return backbone, neck, info


def _stage_channels(depth: int) -> List[int]:
    base = [64, 128, 256, 512]
    return base if depth in (18, 34) else [4 * c for c in base]


def _fpn_level(boxes: torch.Tensor, num_levels: int,
               finest_scale: float = 56.) -> torch.Tensor:
    """mmdet's ``SingleRoIExtractor.map_roi_levels``."""
    scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) *
                       (boxes[:, 3] - boxes[:, 1]))
    lvl = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return lvl.clamp(min=0, max=num_levels - 1).long()


@torch.no_grad()
def _network_features(images: torch.Tensor, boxes: List[torch.Tensor],
                      backbone, neck, pool: int) -> torch.Tensor:
    from torchvision.ops import roi_align
    feats = backbone(images)
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1)
                      for i, b in enumerate(boxes)])
    width = images.shape[-1]

    def align(fmap, r):
        scale = fmap.shape[-1] / width
        out = roi_align(fmap, r, output_size=7, spatial_scale=scale,
                        sampling_ratio=2, aligned=True)
        return F.adaptive_avg_pool2d(out, pool).flatten(1)

    if neck is not None:
        levels = neck(feats)
        lvl = _fpn_level(rois[:, 1:], len(levels))
        out = rois.new_zeros(len(rois), levels[0].shape[1] * pool * pool)
        for i, fmap in enumerate(levels):
            sel = (lvl == i).nonzero().flatten()
            if len(sel):
                out[sel] = align(fmap, rois[sel])
        return out
    return torch.cat([align(feats[2], rois), align(feats[3], rois)], 1)


def _box_stats(img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
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


def _decode(seg, h, w, where: str) -> np.ndarray:
    from pycocotools import mask as mask_utils
    try:
        if isinstance(seg, list):  # polygons
            seg = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get('counts'), list):  # uncompressed RLE
            seg = mask_utils.frPyObjects(seg, h, w)
        return mask_utils.decode(seg).astype(np.uint8)
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        raise ProbeError(f'{where}: unreadable segmentation ({e})')


def _mask_texture(img: np.ndarray, segs: List, where: str) -> np.ndarray:
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
    for seg, h, w in segs:
        if seg is None:
            raise ProbeError(f'{where}: an object has no segmentation '
                             '(mask_texture needs masks)')
        full = _decode(seg, h or img.shape[0], w or img.shape[1], where)
        m = cv2.erode(full, np.ones((3, 3), np.uint8)).astype(bool)
        if m.sum() < 5:
            m = full.astype(bool)
        if not m.any():
            m = np.ones_like(full, bool)
        mag = np.hypot(gx[m], gy[m])
        ang = np.mod(np.arctan2(gy[m], gx[m]), np.pi)
        hog, _ = np.histogram(ang, 8, (0, np.pi), weights=mag)
        hog = np.sort(hog)[::-1] / (hog.sum() + 1e-6)
        gv = g[m]
        hist, _ = np.histogram((gv - gv.min()) / (np.ptp(gv) + 1e-6), 8,
                               (0, 1))
        out.append(np.concatenate([
            [gv.std(), mag.mean(), mag.std(), lap[m].mean(), lap[m].std(),
             (mag > 50).mean()], hog, hist / len(gv),
            img[m].astype(np.float64).std(0)]))
    return np.asarray(out, np.float64)


def extract_features(split: Dict, backbone=None, neck=None,
                     features: str = 'backbone', pool: int = 1,
                     batch_size: int = 16) -> Tuple[torch.Tensor,
                                                    torch.Tensor]:
    """``(features (N, D) float64, labels (N, ))`` of every box of a split
    loaded by :func:`load_split`."""
    if features not in FEATURES:
        raise ValueError(f'features must be one of {FEATURES}, got '
                         f'{features!r}')
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    out = []
    n = len(split['images'])
    for s in range(0, n, batch_size):
        imgs = [_read_image(p) for p in split['images'][s:s + batch_size]]
        boxes = split['boxes'][s:s + batch_size]
        if features == 'box_stats':
            out += [torch.from_numpy(_box_stats(im, b))
                    for im, b in zip(imgs, boxes)]
            continue
        if features == 'mask_texture':
            segs = split['segmentations'][s:s + batch_size]
            out += [torch.from_numpy(_mask_texture(im, sg, p))
                    for im, sg, p in zip(imgs, segs,
                                         split['images'][s:s + batch_size])]
            continue
        if len({im.shape for im in imgs}) != 1:
            # different sizes: one image at a time
            for im, b in zip(imgs, boxes):
                out.append(_network_features(
                    (torch.from_numpy(im[..., ::-1].copy()).permute(
                        2, 0, 1)[None].float() - mean) / std,
                    [torch.from_numpy(b)], backbone, neck, pool).double())
            continue
        batch = torch.from_numpy(np.stack(imgs)[..., ::-1].copy())
        batch = (batch.permute(0, 3, 1, 2).float() - mean) / std
        out.append(_network_features(
            batch, [torch.from_numpy(b) for b in boxes], backbone, neck,
            pool).double())
    labels = torch.from_numpy(np.concatenate(split['labels']))
    return torch.cat(out), labels


# --------------------------------------------------------------- classifier
def fit_logistic_regression(x: torch.Tensor, y: torch.Tensor,
                            num_classes: int, weight_decay: float = 1e-2,
                            max_iter: int = 300
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS (float64).

    Minimises ``mean cross-entropy + weight_decay / 2 * |W|^2`` (the bias is
    not decayed) from zero weights; deterministic for given inputs.

    Returns:
        tuple: ``(W (D, C), b (C, ))``.
    """
    x = x.double()
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64,
                    requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter,
                            tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + \
            0.5 * weight_decay * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def probe_features(x_train: torch.Tensor, y_train: torch.Tensor,
                   x_val: torch.Tensor, y_val: torch.Tensor,
                   num_classes: int, weight_decay: float = 1e-2,
                   max_iter: int = 300,
                   classes: Optional[Sequence[str]] = None) -> Dict:
    """Fit on train (standardised with train statistics), score on val.

    Returns:
        dict: ``acc``, ``train_acc``, ``per_class`` (name -> accuracy, None
        for a class absent from val), ``chance`` (share of the most frequent
        val class), ``n_train``, ``n_val``, ``num_classes``, ``feature_dim``.
    """
    x_train, x_val = x_train.double(), x_val.double()
    mu = x_train.mean(0)
    sd = x_train.std(0, unbiased=False).clamp_min(1e-6)
    xt, xv = (x_train - mu) / sd, (x_val - mu) / sd
    w, b = fit_logistic_regression(xt, y_train, num_classes, weight_decay,
                                   max_iter)
    pred_v = (xv @ w + b).argmax(1)
    pred_t = (xt @ w + b).argmax(1)
    names = list(classes) if classes is not None else [
        str(i) for i in range(num_classes)]
    per_class = {}
    for c in range(num_classes):
        sel = y_val == c
        per_class[names[c]] = (float((pred_v[sel] == c).double().mean())
                               if sel.any() else None)
    counts = torch.bincount(y_val, minlength=num_classes)
    return dict(
        acc=float((pred_v == y_val).double().mean()),
        train_acc=float((pred_t == y_train).double().mean()),
        per_class=per_class,
        chance=float(counts.max()) / max(1, len(y_val)),
        n_train=int(len(y_train)), n_val=int(len(y_val)),
        num_classes=int(num_classes), feature_dim=int(x_train.shape[1]))


# --------------------------------------------------------------------- API
def linear_probe(checkpoint: Optional[Union[str, Mapping]],
                 data_root: str,
                 seed: int = 0,
                 train_split: str = 'train',
                 val_split: str = 'val',
                 features: str = 'backbone',
                 pool: int = 1,
                 weight_decay: float = 1e-2,
                 max_iter: int = 300,
                 batch_size: int = 16,
                 random_depth: int = 18,
                 random_fpn_channels: Optional[int] = 128,
                 with_fpn: bool = True) -> Dict:
    """Object-level linear probe of a checkpoint on a labelled dataset.

    Args:
        checkpoint (str | Mapping | None): Pre-training checkpoint (any the
            converters read) or None for a random initialisation.
        data_root (str): Root of the embedded synthetic dataset (or any
            folder of that layout).
        seed (int): Seed of the random initialisation (the fit itself is
            deterministic).
        train_split / val_split (str): Fit on one, score on the other.
        features (str): ``'backbone'`` (the network), ``'box_stats'``
            (colour / size of the box) or ``'mask_texture'`` (texture of
            the mask interior); the last two ignore the checkpoint.
        pool (int): RoI features are average-pooled to ``pool x pool``.
        weight_decay (float): L2 weight of the classifier.
        max_iter (int): L-BFGS iterations.
        batch_size (int): Images per forward pass.
        random_depth / random_fpn_channels: Architecture of the random
            initialisation (default: the demo's ResNet-18, FPN 128 + BN).
        with_fpn (bool): Pool from the FPN when there is one (False: C4 +
            C5 of the backbone).

    Returns:
        dict: :func:`probe_features`'s result plus ``classes``, ``encoder``
        (what was loaded), ``features``, ``seed``, ``seconds``.
    """
    if features not in FEATURES:
        raise ValueError(f'features must be one of {FEATURES}, got '
                         f'{features!r}')
    if pool < 1:
        raise ValueError(f'pool must be >= 1, got {pool}')
    t0 = time.perf_counter()
    train = load_split(data_root, train_split)
    val = load_split(data_root, val_split)
    if train['classes'] != val['classes']:
        raise ProbeError(f'{val["ann_file"]}: categories differ from '
                         f'{train["ann_file"]}')
    backbone = neck = None
    info = dict(source=features)
    if features == 'backbone':
        backbone, neck, info = build_encoder(checkpoint, seed, random_depth,
                                             random_fpn_channels, with_fpn)
    xt, yt = extract_features(train, backbone, neck, features, pool,
                              batch_size)
    xv, yv = extract_features(val, backbone, neck, features, pool,
                              batch_size)
    res = probe_features(xt, yt, xv, yv, len(train['classes']),
                         weight_decay, max_iter, train['classes'])
    res.update(classes=train['classes'], encoder=info, features=features,
               pool=pool, with_fpn=with_fpn, weight_decay=weight_decay,
               seed=int(seed),
               train_split=train_split, val_split=val_split,
               data_root=data_root,
               seconds=round(time.perf_counter() - t0, 2))
    return res
