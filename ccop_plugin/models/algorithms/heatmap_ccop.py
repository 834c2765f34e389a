"""CCOP with proposals from the momentum encoder's heat map, in the step."""
from typing import List, Optional, Tuple

import torch

from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ccop_plugin.utils.view_geometry import map_boxes_between_views
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
    samples' metainfo, kept by ``PackBoxSelfSupInputs``' default
    ``meta_keys``). Boxes
    with less than ``part_thr`` of their area visible in the query view are
    dropped; an image left without boxes falls back to its ``view_bboxes``.

    The heat map reuses CCOP's key pass (the momentum encoder's last stage
    of the key view, in the original batch order): no extra backbone pass.

    Args:
        proposal_generator (dict): ``HeatmapProposalGenerator`` config.
        part_thr (float): Visible fraction in the query view. Defaults to 0.6.
        **kwargs: :class:`CCOP` arguments.
    """

    boxes_from_key_features = True

    def __init__(self, proposal_generator: Optional[dict] = None,
                 part_thr: float = 0.6, **kwargs) -> None:
        super().__init__(**kwargs)
        gen = dict(proposal_generator or {})
        gen.setdefault('type', 'HeatmapProposalGenerator')
        self.proposal_generator = MODELS.build(gen)
        self.part_thr = part_thr
        self.register_buffer('step', torch.zeros(1, dtype=torch.long))

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample], **kwargs):
        try:
            return super().loss(inputs, data_samples, **kwargs)
        finally:
            self.step += 1

    def _boxes_from_key_features(
            self, c5_k: torch.Tensor, img_size: Tuple[int, int],
            data_samples: List[DataSample], boxes_q: List[torch.Tensor],
            boxes_k: List[torch.Tensor]) -> Tuple[List[torch.Tensor], ...]:
        """Heat-map boxes of the key view and their query-view images.

        Args:
            c5_k (torch.Tensor): ``(B, C, h, w)`` momentum-encoder features.
            img_size (tuple[int, int]): ``(H, W)`` of the (square) views.
            data_samples (List[DataSample]): With ``view_crops`` and
                ``view_flips`` in their metainfo.
            boxes_q, boxes_k (List[torch.Tensor]): ``view_bboxes`` per
                image, the fallback of an image left without boxes.

        Returns:
            tuple: per-image query-view and key-view boxes ``(N_b, 4)``.
        """
        size = img_size[-1]
        props = self.proposal_generator(c5_k, img_size, int(self.step.item()))
        out_q, out_k = [], []
        for i, (ds, bk) in enumerate(zip(data_samples, props)):
            if 'view_crops' not in ds or 'view_flips' not in ds:
                raise KeyError(
                    f'data sample {i} lacks view_crops/view_flips: add them '
                    'to PackBoxSelfSupInputs(meta_keys=...)')
            crops, flips = ds.view_crops, ds.view_flips
            bq, frac = map_boxes_between_views(bk, crops[1], flips[1],
                                               crops[0], flips[0], size)
            keep = frac >= self.part_thr
            if keep.any():
                out_q.append(bq[keep])
                out_k.append(bk[keep])
            else:
                out_q.append(boxes_q[i])
                out_k.append(boxes_k[i])
        return out_q, out_k
