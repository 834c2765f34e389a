"""Shapes and textures of the synthetic detection dataset.

Every object class is a shape. Texture families are shared by all classes
(each object draws one, see ``SceneConfig.texture_by_class``), and colours
and the texture's parameters (period, orientation, phase) vary per
instance, so neither colour nor texture identifies a class: the outline
does.
"""
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

# class name -> the texture family of format 1 (``texture_by_class=True``);
# the class order defines category ids 1..N
CLASS_TEXTURES: Dict[str, str] = {
    'circle': 'stripes',
    'rectangle': 'checker',
    'triangle': 'dots',
    'star': 'gradient',
    'ring': 'solid',
    'cross': 'crosshatch',
}
CLASSES: Tuple[str, ...] = tuple(CLASS_TEXTURES)
TEXTURES: Tuple[str, ...] = tuple(CLASS_TEXTURES.values())


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, s], [-s, c]], dtype=np.float64)


def _fill(h: int, w: int, polys: List[np.ndarray]) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polys], 1)
    return mask


def _ellipse(h, w, cx, cy, ax, ay, angle_deg) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (int(round(cx)), int(round(cy))),
                (max(1, int(round(ax))), max(1, int(round(ay)))),
                float(angle_deg), 0, 360, 1, -1)
    return mask


def shape_circle(rng, h, w, cx, cy, r):
    """Circle or moderately elongated ellipse of radius ``r``."""
    return _ellipse(h, w, cx, cy, r, r * rng.uniform(0.7, 1.0),
                    rng.uniform(0, 180))


def shape_rectangle(rng, h, w, cx, cy, r):
    """Rotated rectangle, aspect ratio 0.5-1."""
    half = np.array([r, r * rng.uniform(0.5, 1.0)])
    pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    pts = _rotate(pts, rng.uniform(0, np.pi)) + (cx, cy)
    return _fill(h, w, [pts])


def shape_triangle(rng, h, w, cx, cy, r):
    """Roughly equilateral triangle (vertices jittered), rotated."""
    ang = np.arange(3) * 2 * np.pi / 3 + rng.uniform(-0.25, 0.25, 3)
    rad = r * rng.uniform(0.85, 1.1, 3)
    pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
    pts = _rotate(pts, rng.uniform(0, 2 * np.pi)) + (cx, cy)
    return _fill(h, w, [pts])


def shape_star(rng, h, w, cx, cy, r):
    """Five-pointed star, inner radius 0.38-0.5 of the outer one."""
    n = 5
    ang = np.arange(2 * n) * np.pi / n + rng.uniform(0, 2 * np.pi)
    rad = np.where(np.arange(2 * n) % 2 == 0, r,
                   r * rng.uniform(0.38, 0.5))
    pts = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1) + (cx, cy)
    return _fill(h, w, [pts])


def shape_ring(rng, h, w, cx, cy, r):
    """Annulus (ellipse minus a concentric ellipse of 0.45-0.6 its size)."""
    ratio = rng.uniform(0.8, 1.0)
    angle = rng.uniform(0, 180)
    outer = _ellipse(h, w, cx, cy, r, r * ratio, angle)
    k = rng.uniform(0.45, 0.6)
    inner = _ellipse(h, w, cx, cy, r * k, r * ratio * k, angle)
    return outer * (1 - inner)


def shape_cross(rng, h, w, cx, cy, r):
    """Plus sign with arms 0.3-0.45 of the size wide, rotated."""
    a = r * rng.uniform(0.3, 0.45)
    arm1 = np.array([[-r, -a], [r, -a], [r, a], [-r, a]], np.float64)
    arm2 = arm1[:, ::-1]
    rot = rng.uniform(0, np.pi / 2)
    return _fill(h, w, [_rotate(arm1, rot) + (cx, cy),
                        _rotate(arm2, rot) + (cx, cy)])


SHAPES: Dict[str, Callable] = {
    'circle': shape_circle,
    'rectangle': shape_rectangle,
    'triangle': shape_triangle,
    'star': shape_star,
    'ring': shape_ring,
    'cross': shape_cross,
}


def _colour_pair(rng) -> Tuple[np.ndarray, np.ndarray]:
    """Two colours with a clear contrast (L1 distance >= 150)."""
    while True:
        a = rng.integers(0, 256, 3).astype(np.float32)
        b = rng.integers(0, 256, 3).astype(np.float32)
        if np.abs(a - b).sum() >= 150:
            return a, b


def texture(rng: np.random.Generator, kind: str, h: int,
            w: int) -> np.ndarray:
    """A ``(h, w, 3)`` float32 BGR texture of family ``kind``."""
    a, b = _colour_pair(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    if kind == 'stripes':
        period = rng.uniform(4, 8)
        t = (np.mod(u + rng.uniform(0, period), period) < period / 2)
    elif kind == 'checker':
        cell = rng.uniform(3, 6)
        t = (np.floor(u / cell) + np.floor(v / cell)) % 2 == 0
    elif kind == 'dots':
        period = rng.uniform(5, 8)
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        t = du * du + dv * dv < (period * rng.uniform(0.22, 0.3))**2
    elif kind == 'crosshatch':
        period = rng.uniform(5, 8)
        lw = rng.uniform(1.2, 2.0)
        t = (np.mod(u, period) < lw) | (np.mod(v, period) < lw)
    elif kind == 'gradient':
        span = max(h, w) * rng.uniform(0.3, 0.6)
        t = np.clip(np.mod(u, 2 * span) / span, 0, 2)
        t = np.where(t > 1, 2 - t, t)  # triangle wave: smooth two-colour ramp
    elif kind == 'solid':
        t = np.zeros((h, w), np.float32)
    else:
        raise ValueError(f'unknown texture {kind!r}')
    t = t.astype(np.float32)[..., None]
    tex = a * (1 - t) + b * t
    return tex + rng.normal(0, 6, (h, w, 3)).astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Cluttered background: smooth colour noise, random lines and blobs.

    Returns ``(h, w, 3)`` float32 BGR in [0, 255].
    """
    cells = int(rng.integers(3, 8))
    small = rng.uniform(40, 215, (cells, cells, 3)).astype(np.float32)
    grey = small.mean(-1, keepdims=True)
    small = grey + rng.uniform(0.3, 0.8) * (small - grey)  # muted colours
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 8, (h, w, 3)).astype(np.float32)
    # irregular blobs (clutter, not objects): smooth noise thresholded
    grid = (max(2, h // 16), max(2, w // 16))
    for _ in range(int(rng.integers(1, 4))):
        noise = rng.random(grid).astype(np.float32)
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        blob = noise > rng.uniform(0.85, 0.95)
        img[blob] = rng.uniform(0, 255, 3).astype(np.float32)
    canvas = np.ascontiguousarray(img)
    for _ in range(int(rng.integers(3, 9))):
        p1 = tuple(int(v) for v in rng.integers(0, (w, h)))
        p2 = tuple(int(v) for v in rng.integers(0, (w, h)))
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        cv2.line(canvas, p1, p2, colour, int(rng.integers(1, 3)),
                 cv2.LINE_AA)
    return np.clip(canvas, 0, 255)
