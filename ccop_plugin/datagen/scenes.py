"""Multi-object scenes with occlusion and visible-part instance masks."""
from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from .shapes import (
    CLASS_TEXTURES,
    CLASSES,
    SHAPES,
    TEXTURES,
    background,
    texture,
)


@dataclass
class SceneConfig:
    """Parameters of one scene.

    Args:
        height (int): Image height in pixels.
        width (int): Image width in pixels.
        classes (Sequence[str]): Object classes (subset of
            :data:`~ccop_plugin.datagen.shapes.CLASSES`); the order defines
            the label index.
        min_objects (int): Fewest objects drawn per image.
        max_objects (int): Most objects drawn per image.
        min_scale (float): Smallest object radius as a fraction of
            ``min(height, width)``.
        max_scale (float): Largest object radius, same unit.
        min_visible (float): An object whose visible part is below this
            fraction of its full area is dropped (its pixels stay in the
            image as clutter).
        min_area (int): Visible area in pixels below which an object is
            dropped.
        texture_by_class (bool): Paint every object of a class with that
            class's texture family (:data:`CLASS_TEXTURES`), as format 1
            did. Default False: each object draws its family uniformly
            from :data:`TEXTURES`, independently of its class, so the class
            can be read only off the object's shape (a texture descriptor of
            the mask interior names the class in 82 % of the val objects of
            format 1, and at chance level here; docs/science.md).
    """
    height: int = 128
    width: int = 128
    classes: Sequence[str] = field(default_factory=lambda: CLASSES)
    min_objects: int = 2
    max_objects: int = 5
    min_scale: float = 0.08
    max_scale: float = 0.25
    min_visible: float = 0.35
    min_area: int = 30
    texture_by_class: bool = False

    def __post_init__(self):
        unknown = [c for c in self.classes if c not in SHAPES]
        if unknown or not self.classes:
            raise ValueError(f'unknown or no classes {unknown}; choose from '
                             f'{list(CLASSES)}')
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError('need 1 <= min_objects <= max_objects, got '
                             f'{self.min_objects}, {self.max_objects}')
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError('need 0 < min_scale <= max_scale, got '
                             f'{self.min_scale}, {self.max_scale}')
        if self.height < 16 or self.width < 16:
            raise ValueError('images must be at least 16x16, got '
                             f'{self.height}x{self.width}')


def render_scene(rng: np.random.Generator, cfg: SceneConfig
                 ) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Draw one scene.

    Objects are painted in order, so later objects occlude earlier ones; each
    returned mask is the object's VISIBLE part.

    Args:
        rng (np.random.Generator): Source of randomness (the scene is a pure
            function of its state).
        cfg (SceneConfig): Scene parameters.

    Returns:
        tuple: ``img`` (H, W, 3) uint8 BGR and a list of ``(label, mask)``
        with ``label`` the index into ``cfg.classes`` and ``mask`` (H, W)
        uint8 in {0, 1}, in painting order.
    """
    h, w = cfg.height, cfg.width
    img = background(rng, h, w)
    owner = np.full((h, w), -1, np.int32)
    labels, full_areas = [], []
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    side = min(h, w)
    for k in range(n):
        label = int(rng.integers(len(cfg.classes)))
        name = cfg.classes[label]
        r = rng.uniform(cfg.min_scale, cfg.max_scale) * side
        # centres may sit near the border: objects can be cut by the frame
        cx = rng.uniform(0.3 * r, w - 0.3 * r)
        cy = rng.uniform(0.3 * r, h - 0.3 * r)
        mask = SHAPES[name](rng, h, w, cx, cy, r).astype(bool)
        if cfg.texture_by_class:
            family = CLASS_TEXTURES[name]
        else:
            family = TEXTURES[int(rng.integers(len(TEXTURES)))]
        tex = texture(rng, family, h, w)
        img[mask] = tex[mask]
        owner[mask] = k
        labels.append(label)
        full_areas.append(int(mask.sum()))
    img = img + rng.normal(0, 3, img.shape).astype(np.float32)
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    instances = []
    for k, (label, full) in enumerate(zip(labels, full_areas)):
        visible = (owner == k)
        area = int(visible.sum())
        if full == 0 or area < cfg.min_area or area < cfg.min_visible * full:
            continue
        instances.append((label, visible.astype(np.uint8)))
    return img, instances
