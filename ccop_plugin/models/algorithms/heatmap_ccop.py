"""CCOP with proposals from the momentum encoder's heat map, in the step."""
from typing import List, Optional, Tuple

import torch

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..utils.view_geometry import image_to_view, view_to_image
from .ccop import CCOP


@MODELS.register_module()
class HeatmapCCOP(CCOP):
    """CCOP whose object boxes come from a heat map computed in the step.

    Semantic-aware localization (Geng & Huang, CICAI 2023) plugged into CCOP
    without selective search: the momentum encoder's last-stage features of
    the key view (view 1) give a heat map, ``HeatmapProposalGenerator`` draws
    centre-suppressed boxes (warm-up: whole-image or random boxes), which are
    mapped through the image into the query view with the crops of
    ``BoxAwareMultiView`` (``view_crops``, ``view_flips`` in the data
    samples' metainfo: add them to ``PackBoxSelfSupInputs.meta_keys``). Boxes
    with less than ``part_thr`` of their area visible in the query view are
    dropped; an image left without boxes falls back to its ``view_bboxes``.

    Costs one extra no-grad pass of the key backbone per step.

    Args:
        proposal_generator (dict): ``HeatmapProposalGenerator`` config.
        part_thr (float): Visible fraction in the query view. Defaults to 0.6.
        **kwargs: :class:`CCOP` arguments.
    """

    def __init__(self, proposal_generator: Optional[dict] = None,
                 part_thr: float = 0.6, **kwargs) -> None:
        super().__init__(**kwargs)
        gen = dict(proposal_generator or {})
        gen.setdefault('type', 'HeatmapProposalGenerator')
        self.proposal_generator = MODELS.build(gen)
        self.part_thr = part_thr
        self.register_buffer('step', torch.zeros(1, dtype=torch.long))
        self._im_k = None

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample], **kwargs):
        self._im_k = inputs[1]
        try:
            return super().loss(inputs, data_samples, **kwargs)
        finally:
            self._im_k = None
            self.step += 1

    def _get_boxes(self, data_samples: List[DataSample], num_imgs: int,
                   device: torch.device) -> Tuple[List[torch.Tensor], ...]:
        fallback_q, fallback_k = CCOP._get_boxes(data_samples, num_imgs,
                                                 device)
        im_k = self._im_k
        size = im_k.shape[-1]
        with torch.no_grad():
            backbone_k = self.encoder_k.module[0]
            feats = backbone_k(im_k)[-1]
            props = self.proposal_generator(feats, im_k.shape[-2:],
                                            int(self.step.item()))
        boxes_q, boxes_k = [], []
        for i, (ds, bk) in enumerate(zip(data_samples, props)):
            if 'view_crops' not in ds or 'view_flips' not in ds:
                raise KeyError(
                    f'data sample {i} lacks view_crops/view_flips: add them '
                    'to PackBoxSelfSupInputs(meta_keys=...)')
            crops, flips = ds.view_crops, ds.view_flips
            img_boxes = view_to_image(bk, crops[1], flips[1], size)
            bq, frac = image_to_view(img_boxes, crops[0], flips[0], size)
            keep = frac >= self.part_thr
            if keep.any():
                boxes_q.append(bq[keep])
                boxes_k.append(bk[keep])
            else:
                boxes_q.append(fallback_q[i])
                boxes_k.append(fallback_k[i])
        return boxes_q, boxes_k
