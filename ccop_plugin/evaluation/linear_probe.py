"""Object-level linear probe: how well frozen features name the objects.

The backbone of a pre-training checkpoint is frozen; the features of every
ground-truth box of a labelled COCO split are pooled with RoIAlign; a
multinomial logistic regression is fitted on the train split, its L2 weight
and iterations are chosen on a selection split (val), and it is scored on a
held-out split. The score is the object classification accuracy.

* Checkpoints: anything the package's backbone loader reads
  (:func:`~ccop_plugin.models.utils.backbone_loader.load_resnet_backbone`:
  CCOP, mmpretrain MoCo v2 / DenseCL, bare torchvision / mmdet ResNet state
  dicts, Detectron2 layouts), or ``None`` for a random initialisation
  (seeded ResNet-18).
* Features: the same for every method: RoIAlign (the package's one RoI
  pooling, :func:`~ccop_plugin.models.utils.rois.roi_align_level`) on the
  backbone stages C3 and C4 (:data:`STAGES`), never an FPN (a
  checkpoint's FPN is not comparable to a random one, and MoCo v2 has
  none), each RoI average-pooled to ``pool x pool`` cells (default 1, one
  vector per stage, since version 4: with 2 x 2 cells the layout of random
  filters' responses already names a shape, so random init probed as high
  as pre-trained features; docs/science.md, "The probe's layout"),
  concatenated.
* Classifier: features standardised with the train statistics, then
  full-batch L-BFGS on the cross-entropy plus ``weight_decay * |W|^2 / 2``
  in float64, from zero weights. The weight decay and the number of L-BFGS
  iterations are chosen on the selection split from a small grid
  (:data:`WEIGHT_DECAYS` x :data:`MAX_ITERS`); the fit is deterministic, so a
  run is a pure function of the checkpoint, the data and (for random init)
  the seed.
* ``features='box_stats'`` / ``'mask_texture'`` replace the network by
  trivial descriptors (:mod:`.probe_data`): colour and size of the box, or
  the texture inside the object's eroded mask; a high score there means the
  data saturates the probe.
"""
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .probe_classifier import probe_features, select_regularisation
from .probe_data import (
    ProbeError,
    box_stats,
    load_split,
    mask_texture,
    read_image,
    to_input,
)

FEATURES = ('backbone', 'box_stats', 'mask_texture')
#: backbone stages the probe pools (0 = C2 ... 3 = C5): C3 + C4 (strides 8
#: and 16) since version 3; the supervised control reaches 72 % on them
#: against 36 % on C4 + C5 (docs/science.md)
STAGES = (1, 2)
#: the default RoI layout kept: ``POOL x POOL`` cells per stage (1 since
#: version 4; 2 before)
POOL = 1
#: the grid the classifier's regularisation is chosen from (on val)
WEIGHT_DECAYS = (1e-3, 1e-2, 1e-1, 1., 10., 100.)
MAX_ITERS = (10, 100)
#: bumped whenever the probe's result for the same input changes (part of
#: the main job's probe stage key; 4: ``POOL`` 2 -> 1)
VERSION = 4


# ------------------------------------------------------------------ encoder
def build_encoder(checkpoint: Optional[Union[str, Mapping]] = None,
                  seed: int = 0, depth: int = 18, width: int = 64
                  ) -> Tuple[torch.nn.Module, Dict]:
    """Frozen ResNet of ``checkpoint`` (None: random init of ``depth`` and
    ``width`` from ``seed``; a checkpoint's depth and width are read from
    it):
    :func:`~ccop_plugin.models.utils.backbone_loader.load_resnet_backbone`,
    its errors as :class:`ProbeError`."""
    from ccop_plugin.models.utils.backbone_loader import (
        BackboneLoadError,
        load_resnet_backbone,
    )
    try:
        return load_resnet_backbone(checkpoint, depth, seed, width=width)
    except BackboneLoadError as e:
        raise ProbeError(str(e)) from None


def pool_roi_features(feats: Sequence[torch.Tensor], rois: torch.Tensor,
                      stages: Sequence[int] = STAGES,
                      pool: int = POOL) -> torch.Tensor:
    """``(K, sum C_s * pool^2)``: every RoI RoIAligned (7 x 7) on each of
    ``stages`` of a ResNet's outputs ``feats`` (stride ``2 ** (s + 2)``),
    average-pooled to ``pool x pool`` and concatenated."""
    from ccop_plugin.models.utils.rois import roi_align_level
    out = []
    for s in stages:
        cells = roi_align_level(feats[s], rois, 2 ** (s + 2), 7,
                                sampling_ratio=2, aligned=True)
        out.append(F.adaptive_avg_pool2d(cells, pool).flatten(1))
    return torch.cat(out, 1)


@torch.no_grad()
def _network_features(imgs, boxes, backbone, stages, pool) -> List:
    from ccop_plugin.models.utils.rois import boxes_to_rois
    if len({im.shape for im in imgs}) != 1:  # sizes differ: one at a time
        return [f for im, b in zip(imgs, boxes)
                for f in _network_features([im], [b], backbone, stages,
                                           pool)]
    rois = boxes_to_rois([torch.from_numpy(b) for b in boxes])
    feats = backbone(to_input(imgs))
    return [pool_roi_features(feats, rois, stages, pool).double()]


def extract_features(split: Dict, backbone=None, features: str = 'backbone',
                     pool: int = POOL, batch_size: int = 16,
                     stages: Sequence[int] = STAGES
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(features (N, D) float64, labels (N, ))`` of every box of a split
    loaded by :func:`load_split`."""
    if features not in FEATURES:
        raise ValueError(f'features must be one of {FEATURES}, got '
                         f'{features!r}')
    out = []
    for s in range(0, len(split['images']), batch_size):
        paths = split['images'][s:s + batch_size]
        imgs = [read_image(p) for p in paths]
        boxes = split['boxes'][s:s + batch_size]
        if features == 'box_stats':
            out += [torch.from_numpy(box_stats(im, b))
                    for im, b in zip(imgs, boxes)]
        elif features == 'mask_texture':
            out += [torch.from_numpy(mask_texture(im, split['coco'], a, p))
                    for im, a, p in zip(imgs, split['anns'][s:], paths)]
        else:
            out += _network_features(imgs, boxes, backbone, stages, pool)
    labels = torch.from_numpy(np.concatenate(split['labels']))
    return torch.cat(out), labels


# --------------------------------------------------------------------- API
def _load_splits(data_root: str, names: Sequence[str]) -> Dict[str, Dict]:
    splits = {n: load_split(data_root, n) for n in dict.fromkeys(names)}
    first = next(iter(splits.values()))
    for s in splits.values():
        if s['classes'] != first['classes']:
            raise ProbeError(f'{s["ann_file"]}: categories differ from '
                             f'{first["ann_file"]}')
    return splits


def _regularisation(train, select, num_classes: int,
                    weight_decay: Optional[float],
                    max_iter: Optional[int]) -> Dict:
    """The classifier's weight decay and iterations: chosen on ``select``
    (features, labels) among the grid (or the values given), or, without
    a selection split, the given values or 1e-2 and 300."""
    if select is None:
        return dict(weight_decay=1e-2 if weight_decay is None
                    else weight_decay,
                    max_iter=300 if max_iter is None else max_iter,
                    select_acc=None, grid=[])
    wds = WEIGHT_DECAYS if weight_decay is None else (weight_decay, )
    its = MAX_ITERS if max_iter is None else (max_iter, )
    return select_regularisation(*train, *select, num_classes, wds, its)


def linear_probe(checkpoint: Optional[Union[str, Mapping]],
                 data_root: str,
                 seed: int = 0,
                 train_split: str = 'train',
                 val_split: str = 'val',
                 features: str = 'backbone',
                 pool: int = POOL,
                 weight_decay: Optional[float] = None,
                 max_iter: Optional[int] = None,
                 batch_size: int = 16,
                 random_depth: int = 18,
                 random_width: int = 64,
                 select_split: Optional[str] = 'val',
                 stages: Sequence[int] = STAGES) -> Dict:
    """Object-level linear probe of a checkpoint on a labelled dataset.

    Args:
        checkpoint (str | Mapping | None): Pre-training checkpoint (any the
            backbone loader reads) or None for a random initialisation.
        data_root (str): Root of the embedded synthetic dataset (or any
            folder of that layout).
        seed (int): Seed of the random initialisation (the fit itself is
            deterministic).
        train_split / val_split (str): Fit on one, score on the other.
        features (str): ``'backbone'`` (the network), ``'box_stats'`` or
            ``'mask_texture'`` (no network; the checkpoint is ignored).
        pool (int): RoI features are average-pooled to ``pool x pool``.
        weight_decay / max_iter: The classifier's L2 weight and L-BFGS
            iterations; None (default): chosen on ``select_split`` from
            :data:`WEIGHT_DECAYS` / :data:`MAX_ITERS`.
        batch_size (int): Images per forward pass.
        random_depth (int): ResNet depth of the random initialisation.
        random_width (int): Its stem and base channels (64; the science
            protocol's checkpoints have 16). A checkpoint's own depth and
            width are read from its tensors.
        select_split (str | None): Split the grid is scored on (default
            val); None: no selection (``weight_decay`` 1e-2 and
            ``max_iter`` 300 unless given).
        stages (Sequence[int]): Backbone stages pooled (default C3, C4).

    Returns:
        dict: :func:`probe_features`'s result on ``val_split`` plus
        ``select_acc``, ``grid`` (the selection), ``weight_decay``,
        ``max_iter`` (the choice), ``classes``, ``encoder`` (what was
        loaded), ``features``, ``pool``, ``stages``, ``seed``, ``seconds``
        and ``selected_on_scored_split`` (True when the selection and the
        score read the same split: the score is then optimistic).
    """
    if features not in FEATURES:
        raise ValueError(f'features must be one of {FEATURES}, got '
                         f'{features!r}')
    if pool < 1:
        raise ValueError(f'pool must be >= 1, got {pool}')
    t0 = time.perf_counter()
    names = [train_split, val_split] + ([select_split] if select_split
                                        else [])
    splits = _load_splits(data_root, names)
    backbone, info = None, dict(source=features)
    if features == 'backbone':
        backbone, info = build_encoder(checkpoint, seed, random_depth,
                                       random_width)
    feats = {n: extract_features(s, backbone, features, pool, batch_size,
                                 stages) for n, s in splits.items()}
    (xt, yt), (xv, yv) = feats[train_split], feats[val_split]
    classes = splits[train_split]['classes']
    chosen = _regularisation(feats[train_split], feats.get(select_split),
                             len(classes), weight_decay, max_iter)
    res = probe_features(xt, yt, xv, yv, len(classes),
                         chosen['weight_decay'], chosen['max_iter'], classes)
    res.update(chosen)
    res.update(classes=classes, encoder=info, features=features, pool=pool,
               stages=list(stages), seed=int(seed), train_split=train_split,
               val_split=val_split, select_split=select_split,
               selected_on_scored_split=select_split == val_split,
               data_root=data_root, version=VERSION,
               seconds=round(time.perf_counter() - t0, 2))
    return res


#: read by the main job's probe stage: a new version is a new stage key
linear_probe.version = VERSION
