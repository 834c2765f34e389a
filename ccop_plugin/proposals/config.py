"""Settings of the selective-search proposal pipeline and its presets.

Two presets reproduce the proposal recipes of the methods we follow:

``ccop`` (default; CCOP, arXiv 2111.13651)
    As CCOP's reference ``tools/selective_search.py``: OpenCV selective search
    in *fast* mode at full resolution up to 2 megapixels; keep boxes whose
    aspect ratio ``w / h`` lies in the open interval ``(1/3, 3)`` and whose
    side ``sqrt(w * h)`` exceeds 20 px; greedy NMS at IoU 0.5 with random
    scores; keep the 50 best-scored survivors. Unlike the reference, the
    preset bounds the cost (``max_pixels=2_000_000``,
    ``max_search_aspect=8``): a larger photo (e.g. 2000 x 1334) is searched
    shrunk to 2 megapixels and its boxes are mapped back, so they differ
    from a direct OpenCV call on the full image; ``--max-pixels none``
    (``max_pixels=None``) searches every image at full resolution, as the
    reference does.

``soco`` (SoCo, arXiv 2106.02637, ``selective_search/filters.py``)
    One graph segmentation (OpenCV's *single* strategy, ``k=300, sigma=0.9``,
    minimum segment 100 px, as SoCo's ``scale=300, sigma=0.9, min_size=100``);
    keep boxes with ``w, h >= 32`` px, aspect ratio in ``[1/3, 3]`` and
    ``sqrt(box area / image area)`` in ``[0.3, 0.8]``. When nothing survives,
    the size constraint is dropped, then the aspect constraint, and finally
    the whole image is used. No NMS, every survivor is kept.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

MODES = ('fast', 'quality', 'single')
FILTERS = ('ccop', 'soco')


@dataclass(frozen=True)
class ProposalConfig:
    """Everything that decides which proposals an image gets.

    Args:
        mode: OpenCV selective-search strategy: ``'fast'``, ``'quality'`` or
            ``'single'`` (one graph segmentation, all four similarities).
        k: Graph-segmentation ``k`` (``base_k`` for fast/quality). ``None``
            keeps OpenCV's default (150 for fast/quality, 200 for single).
        inc_k: Increment of ``k`` between segmentations (fast/quality only).
            ``None`` keeps OpenCV's default (150).
        sigma: Gaussian smoothing of the graph segmentation. ``None`` keeps
            OpenCV's default (0.8).
        max_size: If set, images whose longer side exceeds it are shrunk to
            that longer side before the search; boxes are mapped back to the
            original pixel coordinates before filtering.
        scale_k: With ``max_size``, multiply ``k`` / ``inc_k`` by the pixel
            ratio of the shrunk image, so segments keep their size relative
            to the image (better recall of full-resolution boxes).
        max_pixels: Cost bound: images with more pixels (after
            ``max_size``) are shrunk to this many before the search; boxes
            are mapped back. ``None`` disables it.
        max_search_aspect: Cost bound: an image more than this many times
            longer than wide (or the reverse) is squeezed along its longer
            axis to that aspect before the search (a 10000x50 strip would
            otherwise take minutes); boxes are mapped back. ``None``
            disables it. Images shrunk by either bound are recorded.
        filter: ``'ccop'`` (aspect + side) or ``'soco'`` (cascade, see module
            docstring).
        min_aspect: Smallest allowed ``w / h``.
        max_aspect: Largest allowed ``w / h``. The ``ccop`` filter excludes
            both bounds (as the reference), ``soco`` includes them.
        min_side: ``ccop`` filter: keep boxes with ``sqrt(w * h) > min_side``.
        min_wh: ``soco`` filter: keep boxes with ``w >= min_wh`` and
            ``h >= min_wh``.
        min_rel_size: ``soco`` filter: lower bound of
            ``sqrt(w * h / (W * H))``.
        max_rel_size: ``soco`` filter: upper bound of the same ratio.
        nms_iou: IoU above which greedy NMS (random scores) suppresses a box;
            ``None`` disables NMS.
        max_num: Keep at most this many proposals per image (the best-scored
            after NMS, or the first in a fixed order without NMS); ``None``
            keeps all.
        fallback_whole_image: Use the whole image as the only proposal when no
            box survives the filters.
        seed: Global seed. The random NMS scores of an image are drawn from a
            generator seeded with a hash of ``seed`` and the image's file name,
            so results do not depend on worker count, order or restarts.
    """

    mode: str = 'fast'
    k: Optional[int] = None
    inc_k: Optional[int] = None
    sigma: Optional[float] = None
    max_size: Optional[int] = None
    scale_k: bool = True
    max_pixels: Optional[int] = 2_000_000
    max_search_aspect: Optional[float] = 8.0
    filter: str = 'ccop'
    min_aspect: float = 1.0 / 3.0
    max_aspect: float = 3.0
    min_side: float = 20.0
    min_wh: float = 32.0
    min_rel_size: float = 0.3
    max_rel_size: float = 0.8
    nms_iou: Optional[float] = 0.5
    max_num: Optional[int] = 50
    fallback_whole_image: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.filter not in FILTERS:
            raise ValueError(
                f'filter must be one of {FILTERS}, got {self.filter!r}')
        if not 0 < self.min_aspect <= self.max_aspect:
            raise ValueError('need 0 < min_aspect <= max_aspect, got '
                             f'{self.min_aspect}, {self.max_aspect}')
        if self.max_size is not None and self.max_size < 16:
            raise ValueError(f'max_size must be >= 16, got {self.max_size}')
        if self.max_pixels is not None and self.max_pixels < 256:
            raise ValueError(
                f'max_pixels must be >= 256, got {self.max_pixels}')
        if self.max_search_aspect is not None and \
                self.max_search_aspect < 1:
            raise ValueError('max_search_aspect must be >= 1, got '
                             f'{self.max_search_aspect}')
        if self.nms_iou is not None and not 0 < self.nms_iou <= 1:
            raise ValueError(f'nms_iou must be in (0, 1], got {self.nms_iou}')
        if self.max_num is not None and self.max_num < 1:
            raise ValueError(f'max_num must be >= 1, got {self.max_num}')
        if not 0 <= self.min_rel_size <= self.max_rel_size:
            raise ValueError('need 0 <= min_rel_size <= max_rel_size')

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> 'ProposalConfig':
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f'unknown proposal settings: {sorted(unknown)}')
        return cls(**d)

    def replace(self, **changes: Any) -> 'ProposalConfig':
        return dataclasses.replace(self, **changes)


PRESETS: Dict[str, Dict[str, Any]] = {
    'ccop': dict(mode='fast', filter='ccop', min_aspect=1.0 / 3.0,
                 max_aspect=3.0, min_side=20.0, nms_iou=0.5, max_num=50,
                 fallback_whole_image=False),
    'soco': dict(mode='single', k=300, sigma=0.9, filter='soco',
                 min_aspect=1.0 / 3.0, max_aspect=3.0, min_wh=32.0,
                 min_rel_size=0.3, max_rel_size=0.8, nms_iou=None,
                 max_num=None, fallback_whole_image=True),
}


def get_preset(name: str, **overrides: Any) -> ProposalConfig:
    """Config of a named preset (``'ccop'`` or ``'soco'``) with overrides.

    Overrides whose value is ``None`` are ignored, so CLI defaults of
    ``None`` keep the preset's value.
    """
    if name not in PRESETS:
        raise ValueError(
            f'unknown preset {name!r}; choose from {sorted(PRESETS)}')
    settings = dict(PRESETS[name])
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return ProposalConfig(**settings)


def parse_shard(spec: Optional[str]) -> Tuple[int, int]:
    """Parse ``'i/n'`` (0-based shard ``i`` of ``n``).

    ``None`` -> ``(0, 1)``.
    """
    if spec is None:
        return 0, 1
    try:
        i_str, n_str = spec.split('/')
        i, n = int(i_str), int(n_str)
    except ValueError:
        raise ValueError(
            f'--shard must look like i/n (e.g. 3/16), got {spec!r}') from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f'--shard {spec}: need n >= 1 and 0 <= i < n')
    return i, n
