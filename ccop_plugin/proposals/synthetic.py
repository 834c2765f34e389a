"""Procedural scenes for tests and benchmarks of the proposal tool.

Each scene is a textured background with a few textured shapes (rectangles,
ellipses, triangles); the shapes' boxes are returned as ground truth. Scenes
are reproducible from their seed and need no data download.
"""
import os
import os.path as osp
from typing import List, Sequence, Tuple

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int,
                  channels: int = 3) -> np.ndarray:
    """Low-frequency noise in [0, 1], ``(h, w, channels)`` float32."""
    gh = max(2, h // cells)
    gw = max(2, w // cells)
    small = rng.random((gh, gw, channels)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return big.reshape(h, w, channels).clip(0, 1)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random colour texture: stripes, checkers or blotches, uint8 BGR."""
    base = rng.integers(0, 256, 3).astype(np.float32)
    alt = rng.integers(0, 256, 3).astype(np.float32)
    kind = rng.integers(0, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # stripes
        period = rng.uniform(6, 24)
        angle = rng.uniform(0, np.pi)
        t = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        m = (np.sin(2 * np.pi * t) > 0).astype(np.float32)[..., None]
    elif kind == 1:  # checkers
        c = rng.uniform(6, 20)
        m = (((xx // c) + (yy // c)) % 2).astype(np.float32)[..., None]
    else:  # blotches
        m = (_smooth_noise(rng, h, w, 12, 1) > 0.5).astype(np.float32)
    tex = base * (1 - m) + alt * m
    tex += rng.normal(0, 6, (h, w, 3)).astype(np.float32)
    return np.clip(tex, 0, 255).astype(np.uint8)


def make_scene(height: int = 480, width: int = 640, seed: int = 0,
               num_shapes: Tuple[int, int] = (3, 7),
               size_range: Tuple[float, float] = (0.12, 0.55)
               ) -> Tuple[np.ndarray, np.ndarray]:
    """A textured BGR scene and its shapes' ``xyxy`` boxes.

    Args:
        height: Image height.
        width: Image width.
        seed: Random seed (same seed, same scene).
        num_shapes: Inclusive range of the number of shapes.
        size_range: Shape side as a fraction of the shorter image side.

    Returns:
        tuple: ``(img (H, W, 3) uint8, boxes (K, 4) float32 xyxy)``: boxes
        of the visible part of each shape; shapes more than 70% hidden by
        later ones are left out.
    """
    rng = np.random.default_rng(seed)
    bg_a = rng.integers(0, 256, 3).astype(np.float32)
    bg_b = rng.integers(0, 256, 3).astype(np.float32)
    noise = _smooth_noise(rng, height, width, 40)
    img = bg_a * (1 - noise) + bg_b * noise
    img += rng.normal(0, 8, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    labels = np.zeros((height, width), np.int32)
    drawn = []
    short = min(height, width)
    for _ in range(int(rng.integers(num_shapes[0], num_shapes[1] + 1))):
        sw = int(short * rng.uniform(*size_range))
        sh = int(np.clip(sw * rng.uniform(0.5, 2.0), 8, height - 2))
        sw = int(np.clip(sw, 8, width - 2))
        x1 = int(rng.integers(0, width - sw))
        y1 = int(rng.integers(0, height - sh))
        mask = np.zeros((height, width), np.uint8)
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.rectangle(mask, (x1, y1), (x1 + sw - 1, y1 + sh - 1), 255, -1)
        elif kind == 1:
            cv2.ellipse(mask, (x1 + sw // 2, y1 + sh // 2),
                        (sw // 2, sh // 2), 0, 0, 360, 255, -1)
        else:
            pts = np.array([[x1 + sw // 2, y1], [x1, y1 + sh - 1],
                            [x1 + sw - 1, y1 + sh - 1]], np.int32)
            cv2.fillPoly(mask, [pts], 255)
        tex = _texture(rng, height, width)
        img[mask > 0] = tex[mask > 0]
        drawn.append(int((mask > 0).sum()))
        labels[mask > 0] = len(drawn)
    boxes = []
    for i, n in enumerate(drawn, 1):
        ys, xs = np.nonzero(labels == i)
        if len(xs) >= 0.3 * n and len(xs):
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return img, np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def write_scenes(out_dir: str, num: int, height: int = 480, width: int = 640,
                 seed: int = 0, ext: str = '.jpg',
                 names: Sequence[str] = ()) -> List[str]:
    """Write ``num`` scenes to ``out_dir``; returns their file names.

    JPEG is written at quality 95. ``names`` overrides the default
    ``scene_00000.jpg``-style names.
    """
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for i in range(num):
        img, _ = make_scene(height, width, seed=seed * 100003 + i)
        name = names[i] if i < len(names) else f'scene_{i:05d}{ext}'
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if name.lower().endswith(
            ('.jpg', '.jpeg')) else []
        path = osp.join(out_dir, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        if not cv2.imwrite(path, img, params):
            raise OSError(f'could not write {path}')
        files.append(name)
    return files
