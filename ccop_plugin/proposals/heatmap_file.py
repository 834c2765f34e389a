"""Heat-map proposals of an image set, written as a proposal file.

:func:`~ccop_plugin.models.utils.heatmap_proposals.draw_heatmap_proposals`
is the one loop that draws the boxes of an image set
(:func:`image_heatmap_boxes`, :class:`HeatmapProposalGenerator`):
:class:`HeatmapProposalHook` runs it every refresh during pre-training and
:func:`write_heatmap_proposals` (``tools/heatmap_proposals.py``, the recall
benchmark) runs it on a checkpoint's backbone, so both write the same boxes
with the proposal file's writer (:func:`write_proposal_file`) and
selective-search and heat-map proposals are measured on equal terms by
:mod:`.recall`. (CCOP's in-step heat-map boxes, ``HeatmapBoxSource``, are
drawn from the key view's features inside the training step: no file.)
"""
import os.path as osp
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from .proposal_file import write_proposal_file
from .sources import ImageEntry

#: the pre-training data preprocessor's normalisation (configs/ccop)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def build_heatmap_backbone(checkpoint: Optional[str] = None,
                           depth: int = 18,
                           seed: int = 0) -> Tuple[Any, str]:
    """The ResNet whose C5 map gives the heat maps.

    Args:
        checkpoint (str, optional): A pre-training checkpoint (CCOP, heat-map
            CCOP, MoCo v2, ... or a bare ResNet state dict); its query
            encoder is read by the library's one backbone loader
            (``models.utils.backbone_loader.load_resnet_backbone``) and the
            depth is taken from it. None: a randomly initialised
            ResNet (seeded) -- a baseline, not a trained network.
        depth (int): ResNet depth without a checkpoint.
        seed (int): Seed of the random initialisation.

    Returns:
        tuple: ``(backbone in eval mode, description)``.

    Raises:
        BackboneLoadError: (a ``ValueError``) one line naming the
            checkpoint when it holds no ResNet.
    """
    from ccop_plugin.models.utils.backbone_loader import load_resnet_backbone
    net, info = load_resnet_backbone(checkpoint, depth, seed,
                                     out_indices=(3, ))
    return net, info['description']


def write_heatmap_proposals(entries: Sequence[ImageEntry], img_dir: str,
                            out: str, backbone: Any, generator: Any,
                            img_scale: int = 224,
                            mean: Sequence[float] = IMAGENET_MEAN,
                            std: Sequence[float] = IMAGENET_STD,
                            to_rgb: bool = True,
                            overwrite: bool = False,
                            info: Optional[Dict[str, Any]] = None,
                            progress: Optional[Callable[[int, int], None]]
                            = None) -> Dict[str, Any]:
    """Draw heat-map proposals for ``entries`` and write a proposal JSON.

    Args:
        entries: Images (``id``, ``file_name`` relative to ``img_dir``).
        img_dir: Image root.
        out: Output proposal JSON (written atomically).
        backbone: Network whose last output is the C5 map (e.g. from
            :func:`build_heatmap_backbone`).
        generator: A :class:`HeatmapProposalGenerator`.
        img_scale: Square side the images are resized to.
        mean, std, to_rgb: Input normalisation (the pre-training one).
        overwrite: Replace an existing ``out``; otherwise that is an error.
        info: Stored in the file's ``info``.
        progress: Called as ``progress(done, total)`` after each image.

    Returns:
        dict: ``images``, ``annotations`` written, ``proposals_per_image``.

    Raises:
        FileExistsError: ``out`` exists and not ``overwrite``.
        UnreadableImageError: an image cannot be read (naming it; a
            ``ValueError`` and a ``FileNotFoundError``).
    """
    from ccop_plugin.models.utils.heatmap_proposals import (
        draw_heatmap_proposals,
    )
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'{out}: exists; pass --overwrite to replace '
                              'it')
    results = draw_heatmap_proposals(
        [(e.file_name, osp.join(img_dir, e.file_name)) for e in entries],
        backbone, generator, img_scale, mean, std, to_rgb, progress)
    counts = write_proposal_file(out, entries, results, info=info)
    counts['proposals_per_image'] = round(
        counts['annotations'] / max(counts['images'], 1), 2)
    return counts
