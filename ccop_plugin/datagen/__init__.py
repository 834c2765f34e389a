"""Procedural COCO-format dataset of textured shapes (embedded default data).

Public API: :func:`generate_synthetic_coco`, :func:`render_scene`,
:class:`SceneConfig`, :data:`CLASSES`; :func:`make_scene` and
:func:`write_scenes` give the same scenes as loose images with their boxes
(the proposal tool's tests and benchmarks).
"""
from .coco_writer import (
    SPLITS,
    encode_mask,
    generate_synthetic_coco,
    image_rng,
    is_complete,
)
from .image_folder import make_scene, write_scenes
from .scenes import SceneConfig, render_scene
from .shapes import CLASS_TEXTURES, CLASSES, SHAPES, background, texture

__all__ = [
    'CLASSES', 'CLASS_TEXTURES', 'SHAPES', 'SPLITS', 'SceneConfig',
    'background', 'encode_mask', 'generate_synthetic_coco', 'image_rng',
    'is_complete', 'make_scene', 'render_scene', 'texture', 'write_scenes'
]
