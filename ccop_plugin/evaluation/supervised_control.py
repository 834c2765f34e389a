"""The probe's positive control: the same backbone trained with labels.

A randomly initialised ResNet (the architecture every method pre-trains) is
trained to classify the ground-truth boxes of the labelled train split, with
exactly the probe's features (:func:`~.linear_probe.pool_roi_features`: RoI
cells of C3 and C4 by default) feeding a linear classifier; then it is
frozen and probed like any checkpoint. Features that do know the classes
must score high there, and random init near chance: if the control does
not, the probe (or the data) cannot tell methods apart.

Training: by default whole train images (``crop`` 128, the data's side:
BatchNorm learns the statistics the probe then feeds the frozen network),
or random square crops of them (objects at their original scale, as the
probe sees them; a box is kept when its centre is in the crop, clipped);
random flips and transposes (the classes are shapes, so
every one of the eight symmetries of the square keeps the label), AdamW with
a linear warm-up (5 % of the steps) and a cosine schedule. Seeded: the
global torch RNG is left untouched.
"""
import math
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .linear_probe import (
    POOL,
    STAGES,
    VERSION,
    linear_probe,
    pool_roi_features,
)
from .probe_data import load_split, read_image, to_input

#: optimisation steps of the control's training (batches of ``batch_size``
#: crops); see docs/science.md for what it reaches (2 x 2 cells: 1200 steps
#: gave 72.2 % on one CPU and 68.5 % on another, 2400 steps 77-79 %; the
#: 1 x 1 cells of probe version 4: 2400 steps 69.7 %, 4800 steps 79.7 % on
#: val, seed 0)
STEPS = 4800


def _random_view(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                 crop: int, gen: torch.Generator):
    """A random ``crop`` x ``crop`` view (one of the square's symmetries)
    with the boxes whose centre falls in it; None when there is none."""
    h, w = img.shape[:2]
    size = min(crop, h, w)
    y0 = int(torch.randint(0, h - size + 1, (1, ), generator=gen))
    x0 = int(torch.randint(0, w - size + 1, (1, ), generator=gen))
    b = boxes - np.asarray([x0, y0, x0, y0], np.float32)
    centre = (b[:, :2] + b[:, 2:]) / 2
    keep = ((centre >= 0) & (centre < size)).all(1)
    if not keep.any():
        return None
    view = img[y0:y0 + size, x0:x0 + size]
    b = b[keep].clip(0, size)
    flips = torch.randint(0, 2, (3, ), generator=gen).tolist()
    if flips[0]:  # horizontal
        view, b = view[:, ::-1], np.stack(
            [size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], 1)
    if flips[1]:  # vertical
        view, b = view[::-1], np.stack(
            [b[:, 0], size - b[:, 3], b[:, 2], size - b[:, 1]], 1)
    if flips[2]:  # transpose
        view, b = view.transpose(1, 0, 2), b[:, [1, 0, 3, 2]]
    return np.ascontiguousarray(view), b.astype(np.float32), labels[keep]


def _batch(data, batch_size: int, crop: int, gen: torch.Generator):
    views: List = []
    while len(views) < batch_size:
        i = int(torch.randint(0, len(data), (1, ), generator=gen))
        v = _random_view(*data[i], crop, gen)
        if v is not None:
            views.append(v)
    from ccop_plugin.models.utils.rois import boxes_to_rois
    rois = boxes_to_rois([torch.from_numpy(v[1]) for v in views])
    labels = torch.from_numpy(np.concatenate([v[2] for v in views]))
    return to_input([v[0] for v in views]), rois, labels


def train_supervised_backbone(data_root: str, seed: int = 0,
                              split: str = 'train', depth: int = 18,
                              steps: int = STEPS, batch_size: int = 8,
                              crop: int = 128, lr: float = 2e-3,
                              width: int = 64,
                              stages: Sequence[int] = STAGES,
                              pool: int = POOL,
                              log: Optional[Callable[[str], None]] = None
                              ) -> Tuple[torch.nn.Module, Dict]:
    """A ResNet trained to name the boxes of ``split`` (see the module).

    Returns:
        tuple: ``(backbone, info)``: the backbone frozen in eval mode;
        ``info`` holds the settings, ``train_acc`` (running accuracy over
        the last tenth of the steps) and ``seconds``.
    """
    from ccop_plugin.models.utils.backbone_loader import load_resnet_backbone
    t0 = time.perf_counter()
    tr = load_split(data_root, split)
    data = [(read_image(p), b, y) for p, b, y in
            zip(tr['images'], tr['boxes'], tr['labels'])]
    net, _ = load_resnet_backbone(None, depth, seed, width=width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dim = sum(width * 2**s for s in stages) * pool * pool * (
            1 if depth in (18, 34) else 4)
        head = torch.nn.Linear(dim, len(tr['classes']))
    gen = torch.Generator().manual_seed(seed)
    net.norm_eval = False
    net.requires_grad_(True)
    net.train()
    params = list(net.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    hits: List[float] = []
    with torch.enable_grad():
        for step in range(steps):
            for g in opt.param_groups:  # 5 % linear warm-up, cosine
                g['lr'] = lr * min(1., (step + 1) / max(1, steps // 20)) * \
                    0.5 * (1 + math.cos(math.pi * step / steps))
            x, rois, y = _batch(data, batch_size, crop, gen)
            out = head(pool_roi_features(net(x), rois, stages, pool))
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            hits += (out.argmax(1) == y).double().tolist()
            if log is not None and (step + 1) % 50 == 0:
                log(f'supervised control: step {step + 1}/{steps}, loss '
                    f'{loss.item():.3f}')
    net.eval()
    net.requires_grad_(False)
    last = hits[-max(1, len(hits) // 10):]
    return net, dict(steps=steps, batch_size=batch_size, crop=crop, lr=lr,
                     depth=depth, width=width, seed=int(seed),
                     split=split,
                     train_acc=float(np.mean(last)) if last else None,
                     seconds=round(time.perf_counter() - t0, 2))


def supervised_probe(data_root: str, seed: int = 0, val_split: str = 'val',
                     steps: int = STEPS, depth: int = 18,
                     log: Optional[Callable[[str], None]] = None,
                     width: int = 64, crop: int = 128,
                     **probe_kwargs) -> Dict:
    """The probe's positive control for one seed.

    Trains :func:`train_supervised_backbone` on the probe's train split
    (``probe_kwargs['train_split']``, default ``'train'``) and probes the
    frozen result with :func:`~.linear_probe.linear_probe` (same layers,
    pooling and selection as every method), scored on ``val_split``.
    ``width`` (stem and base channels) is the architecture's: 16 for the
    science protocol's ResNet-18; ``crop`` the side of the training views
    (the image's side or more: whole images).

    Returns:
        dict: the probe's result (``acc`` on ``val_split``, ``train_acc``,
        ``select_acc``, ...) plus ``supervised`` (the training's ``info``);
        ``encoder['source']`` is ``'supervised control'``.
    """
    stages = probe_kwargs.get('stages', STAGES)
    pool = probe_kwargs.get('pool', POOL)
    net, info = train_supervised_backbone(
        data_root, seed, probe_kwargs.get('train_split', 'train'), depth,
        steps, crop=crop, width=width, stages=stages, pool=pool, log=log)
    state = dict(state_dict={'backbone.' + k: v
                             for k, v in net.state_dict().items()})
    res = linear_probe(state, data_root, seed=seed, val_split=val_split,
                       **probe_kwargs)
    res['encoder']['source'] = 'supervised control'
    res['supervised'] = info
    return res


#: read by the comparison's supervised stage (its key): bumped whenever the
#: control's result for the same input changes (2: STEPS 1200 -> 2400;
#: 3: 2400 -> 4800)
supervised_probe.version = 3
#: the probe's version the control is scored with (its result changes with
#: it; the supervised stage key holds it from probe version 4 on)
supervised_probe.probe_version = VERSION
