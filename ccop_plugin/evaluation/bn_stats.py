"""Do a checkpoint's stored BN statistics describe the fine-tuning images?

mmdet's plain fine-tuning protocol (``norm_eval=True``, ``frozen_stages=1``)
normalises the backbone with the running mean and variance stored in the
checkpoint and never updates them (``frozen_stages`` alone keeps the stem and
stage 1 that way even with ``norm_eval=False``). After a short pre-training
they are still close to their initial values (mean 0, variance 1) or
describe small pre-training crops, and the detector's losses explode. The
smallest stored variance does not show it (0.82 on a 2-iteration checkpoint
whose features shrink 20-fold). What does: the backbone's output on the
fine-tuning images normalised with the stored statistics (eval mode) against
the same images normalised with their own batch statistics (train mode).
When the stored statistics are those of such images the two agree (ratio 1
by construction); :func:`bn_statistics_drift` returns the ratio per stage.
"""
import glob
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

# outside it the stored statistics are taken not to describe the images
RATIO_RANGE = (0.5, 2.0)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif',
                    '.tiff')
# mmdet's DetDataPreprocessor defaults (RGB)
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def list_images(folder: str, limit: int) -> List[str]:
    """The first ``limit`` images under ``folder`` (sorted, recursive)."""
    files = sorted(p for p in glob.glob(osp.join(folder, '**', '*'),
                                        recursive=True)
                   if p.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        exts = ', '.join(IMAGE_EXTENSIONS)
        raise ValueError(f'{folder}: no images ({exts})')
    return files[:limit]


def _batch(paths: Sequence[str], size: int) -> torch.Tensor:
    import cv2
    imgs = []
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{p}: missing or not a decodable image')
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        imgs.append(img[..., ::-1].astype(np.float32))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def bn_statistics_drift(checkpoint: Union[str, Dict],
                        images: Union[str, Sequence[str]],
                        num_images: int = 8,
                        size: int = 320) -> Dict:
    """Per-stage output of the backbone with stored vs batch statistics.

    Args:
        checkpoint: Any checkpoint the converters read (pre-training or
            converted mmdet one).
        images: A folder (its first ``num_images`` images, sorted) or paths.
        num_images: How many images form the batch.
        size: Images are resized to ``size x size``.

    Returns:
        dict: ``stages``: one dict per ResNet stage (``stage``, ``std_eval``
        with the stored statistics, ``std_train`` with the batch's,
        ``ratio``); ``ok``: every ratio within :data:`RATIO_RANGE`;
        ``min_running_var``; ``depth``.
    """
    from .linear_probe import build_encoder
    paths = (list_images(images, num_images) if isinstance(images, str)
             else list(images)[:num_images])
    if len(paths) < 2:
        raise ValueError('need at least 2 images for batch statistics')
    backbone, info = build_encoder(checkpoint)
    running_vars = [m.running_var for m in backbone.modules()
                    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    min_var = float(min(v.min() for v in running_vars))
    x = _batch(paths, size)
    with torch.no_grad():
        backbone.eval()
        stored = [float(f.std()) for f in backbone(x)]
        backbone.norm_eval = False
        backbone.train()  # batch statistics (running ones change: unused)
        batch = [float(f.std()) for f in backbone(x)]
    stages = [dict(stage=i + 1, std_eval=a, std_train=b, ratio=a / b)
              for i, (a, b) in enumerate(zip(stored, batch))]
    lo, hi = RATIO_RANGE
    return dict(stages=stages, depth=info['depth'],
                ok=all(lo <= s['ratio'] <= hi for s in stages),
                min_running_var=min_var, num_images=len(paths), size=size)


def format_drift(result: Dict, name: Optional[str] = None) -> str:
    """The table and the verdict of :func:`bn_statistics_drift`."""
    lines = [f'{name or "checkpoint"}: ResNet-{result["depth"]}, '
             f'{result["num_images"]} images at {result["size"]} px, '
             f'smallest stored running_var {result["min_running_var"]:.3g}',
             'stage  std (stored stats)  std (batch stats)  ratio']
    for s in result['stages']:
        lines.append(f'{s["stage"]:5d}  {s["std_eval"]:18.3g}  '
                     f'{s["std_train"]:17.3g}  {s["ratio"]:5.3g}')
    lo, hi = RATIO_RANGE
    if result['ok']:
        lines.append(f'ok: every ratio within [{lo}, {hi}]: the stored BN '
                     'statistics fit these images (norm_eval=True and '
                     'frozen stages can use them)')
    else:
        lines.append(f'stored BN statistics do not fit these images (ratio '
                     f'outside [{lo}, {hi}]): fine-tune with '
                     'model.backbone.norm_eval=False '
                     'model.backbone.frozen_stages=-1')
    return '\n'.join(lines)
