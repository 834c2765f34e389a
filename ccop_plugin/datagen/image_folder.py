"""Scenes as loose images (an image folder, no annotation file).

For the proposal tool's tests and benchmarks: the scenes of
:func:`~ccop_plugin.datagen.scenes.render_scene` (the one scene generator of
the package) at any size, with the boxes of their objects as ground truth.
"""
import os
import os.path as osp
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from .scenes import SceneConfig, render_scene


def make_scene(height: int = 480, width: int = 640, seed: int = 0,
               **scene_kwargs) -> Tuple[np.ndarray, np.ndarray]:
    """One scene and its objects' ``xyxy`` boxes.

    Args:
        height (int): Image height.
        width (int): Image width.
        seed (int): Seed (same seed and size, same scene).
        **scene_kwargs: Other fields of :class:`SceneConfig`.

    Returns:
        tuple: ``img`` (H, W, 3) uint8 BGR and ``boxes`` (K, 4) float32
        ``xyxy``, the tight boxes of the visible part of each object (objects
        mostly hidden by later ones are left out, see :class:`SceneConfig`).
    """
    cfg = SceneConfig(height=height, width=width, **scene_kwargs)
    img, instances = render_scene(np.random.default_rng(seed), cfg)
    boxes = []
    for _, mask in instances:
        ys, xs = np.nonzero(mask)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return img, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def write_scenes(out_dir: str, num: int, height: int = 480, width: int = 640,
                 seed: int = 0, ext: str = '.jpg', names: Sequence[str] = (),
                 **scene_kwargs) -> List[str]:
    """Write ``num`` scenes (:func:`make_scene`) into ``out_dir``.

    Image ``i`` is the scene of seed ``seed * 100003 + i``. JPEG is written
    at quality 95.

    Args:
        out_dir (str): Folder (created if needed).
        num (int): Number of images.
        height, width (int): Image size.
        seed (int): Seed of the set.
        ext (str): Extension of the default names ``scene_00000<ext>``.
        names (Sequence[str]): File names (may hold subfolders) of the first
            images instead of the default names.
        **scene_kwargs: Other fields of :class:`SceneConfig`.

    Returns:
        list[str]: The file names, relative to ``out_dir``.
    """
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for i in range(num):
        img, _ = make_scene(height, width, seed=seed * 100003 + i,
                            **scene_kwargs)
        name = names[i] if i < len(names) else f'scene_{i:05d}{ext}'
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if name.lower().endswith(
            ('.jpg', '.jpeg')) else []
        path = osp.join(out_dir, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, img, params):
            raise OSError(f'{path}: could not write the image')
        files.append(name)
    return files
