"""Heat-map proposals of an image set, written as a proposal file.

The boxes are drawn exactly as :class:`HeatmapProposalHook` draws them during
pre-training (:func:`image_heatmap_boxes`, :class:`HeatmapProposalGenerator`)
and written by the proposal file's writer (:func:`write_proposal_file`), so
selective-search and heat-map proposals are measured on equal terms by
:mod:`.recall`.
"""
import os.path as osp
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

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
        ValueError: an image cannot be read (naming it).
    """
    import cv2
    import torch

    from ccop_plugin.models.utils.heatmap_proposals import image_heatmap_boxes
    from ccop_plugin.utils.boxes import xyxy_to_xywh
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'{out}: exists; pass --overwrite to replace '
                              'it')
    results = {}
    with torch.no_grad():
        for k, e in enumerate(entries):
            path = osp.join(img_dir, e.file_name)
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f'{path}: cannot read the image')
            h, w = img.shape[:2]
            boxes = image_heatmap_boxes(backbone, img, generator, img_scale,
                                        mean, std, to_rgb)
            results[e.file_name] = dict(
                width=w, height=h,
                boxes=xyxy_to_xywh(np.asarray(boxes, np.float64)))
            if progress is not None:
                progress(k + 1, len(entries))
    counts = write_proposal_file(out, entries, results, info=info)
    counts['proposals_per_image'] = round(
        counts['annotations'] / max(counts['images'], 1), 2)
    return counts
