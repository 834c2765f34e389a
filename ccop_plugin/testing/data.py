"""Tiny data sets on disk, written in seconds."""
import json
from pathlib import Path
from typing import Tuple, Union

PathLike = Union[str, Path]


def write_tiny_proposal_coco(root: PathLike, num_imgs: int = 4,
                             size: Tuple[int, int] = (120, 150),
                             min_side: float = 40.,
                             with_anns: bool = True) -> Path:
    """Random JPEGs in ``root/images`` and ``root/proposals.json``.

    The proposal file is COCO style with 6 random boxes per image (none when
    ``with_anns`` is False), each side at least ``min_side`` pixels; ``size``
    is ``(height, width)``. The same arguments give the same files.

    Returns:
        Path: ``root``.
    """
    import cv2
    import numpy as np
    root = Path(root)
    rng = np.random.default_rng(0)
    (root / 'images').mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    h, w = size
    for i in range(num_imgs):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        name = f'{i:03d}.jpg'
        cv2.imwrite(str(root / 'images' / name), img)
        images.append(dict(id=i + 1, file_name=name, width=w, height=h))
        for _ in range(6 if with_anns else 0):
            x, y = rng.uniform(0, w * 0.5), rng.uniform(0, h * 0.5)
            bw = rng.uniform(min_side, w * 0.5)
            bh = rng.uniform(min_side, h * 0.5)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=1, bbox=[x, y, bw, bh],
                             area=bw * bh, iscrowd=0))
    with open(root / 'proposals.json', 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='proposal')]), f)
    return root


def write_tiny_detection_coco(root: PathLike, num_train: int = 2,
                              num_val: int = 1, img_size: int = 64,
                              seed: int = 0) -> str:
    """The plugin's synthetic detection set (boxes and masks, the layout of
    :func:`ccop_plugin.datagen.generate_synthetic_coco`) at its smallest:
    no unlabeled split, ``num_train`` / ``num_val`` images of
    ``img_size`` pixels. Enough for a Mask R-CNN iteration and an
    evaluation.

    Returns:
        str: ``root`` (a data root for ``finetune_detector``).
    """
    from ccop_plugin.datagen import generate_synthetic_coco
    root = str(root)
    generate_synthetic_coco(root, seed=seed, num_unlabeled=0,
                            num_train=num_train, num_val=num_val,
                            img_size=img_size)
    return root
