"""Procedural COCO-format dataset of textured shapes (embedded default data).

Public API: :func:`generate_synthetic_coco`, :func:`render_scene`,
:class:`SceneConfig`, :data:`CLASSES`.
"""
from .coco_writer import (SPLITS, encode_mask, generate_synthetic_coco,
                          image_rng, is_complete)
from .scenes import SceneConfig, render_scene
from .shapes import CLASS_TEXTURES, CLASSES, SHAPES, background, texture

__all__ = [
    'CLASSES', 'CLASS_TEXTURES', 'SHAPES', 'SPLITS', 'SceneConfig',
    'background', 'encode_mask', 'generate_synthetic_coco', 'image_rng',
    'is_complete', 'render_scene', 'texture'
]
