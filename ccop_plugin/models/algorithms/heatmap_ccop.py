"""Heat-map boxes computed in the training step: a CCOP box source.

Semantic-aware localization (Geng & Huang, CICAI 2023) plugged into CCOP
without selective search: ``CCOP(box_source=dict(type='HeatmapBoxSource',
...))`` (``configs/mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py``).
``HeatmapCCOP`` is the same model under the name that earlier configs use.
"""
from typing import List, Optional, Tuple

import torch
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ccop_plugin.utils.view_geometry import map_boxes_between_views
from .ccop import CCOP


@MODELS.register_module()
class HeatmapBoxSource:
    """CCOP's object boxes from a heat map of the momentum encoder.

    The momentum encoder's last-stage features of the key view (view 1;
    CCOP's own key pass, so no extra backbone pass) give a heat map,
    ``HeatmapProposalGenerator`` draws centre-suppressed boxes (warm-up:
    whole-image or random boxes), which are mapped through the image into
    the query view with the crops of ``BoxAwareMultiView`` (``view_crops``,
    ``view_flips`` in the data samples' metainfo, kept by
    ``PackBoxSelfSupInputs``' default ``meta_keys``). Boxes with less than
    ``part_thr`` of their area visible in the query view are dropped; an
    image left without boxes falls back to its ``view_bboxes``.

    The warm-up reads the training progress from mmengine's message hub
    (``iter``, set by the runner before every iteration); outside a runner
    it is 0 (warm-up boxes until ``warmup_iters`` of the generator).

    Args:
        generator (dict, optional): ``HeatmapProposalGenerator`` config.
            Defaults to its defaults.
        part_thr (float): Visible fraction in the query view. Defaults to
            0.6.
    """

    def __init__(self, generator: Optional[dict] = None,
                 part_thr: float = 0.6) -> None:
        gen = dict(generator or {})
        gen.setdefault('type', 'HeatmapProposalGenerator')
        self.generator = MODELS.build(gen)
        self.part_thr = part_thr

    def __call__(self, c5_k: torch.Tensor, img_size: Tuple[int, int],
                 data_samples: List[DataSample],
                 boxes_q: List[torch.Tensor],
                 boxes_k: List[torch.Tensor]
                 ) -> Tuple[List[torch.Tensor], ...]:
        """Heat-map boxes of the key view and their query-view images.

        Args:
            c5_k (torch.Tensor): ``(B, C, h, w)`` momentum-encoder features
                of the key view, in the original batch order.
            img_size (tuple[int, int]): ``(H, W)`` of the (square) views.
            data_samples (List[DataSample]): With ``view_crops`` and
                ``view_flips`` in their metainfo.
            boxes_q, boxes_k (List[torch.Tensor]): ``view_bboxes`` per
                image, the fallback of an image left without boxes.

        Returns:
            tuple: per-image query-view and key-view boxes ``(N_b, 4)``, row
            ``i`` the same object in both views.
        """
        size = img_size[-1]
        cur_iter = MessageHub.get_current_instance().get_info('iter', 0)
        props = self.generator(c5_k, img_size, int(cur_iter))
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


@MODELS.register_module()
class HeatmapCCOP(CCOP):
    """CCOP with :class:`HeatmapBoxSource` (the name of earlier configs).

    ``type='HeatmapCCOP', proposal_generator=G, part_thr=p`` builds
    ``CCOP(box_source=dict(type='HeatmapBoxSource', generator=G,
    part_thr=p))``; checkpoints of the earlier class (with its ``step``
    buffer, now the message hub's ``iter``) load into either.

    Args:
        proposal_generator (dict, optional): ``HeatmapProposalGenerator``
            config.
        part_thr (float): Visible fraction in the query view. Defaults to
            0.6.
        **kwargs: :class:`CCOP` arguments.
    """

    def __init__(self, proposal_generator: Optional[dict] = None,
                 part_thr: float = 0.6, **kwargs) -> None:
        super().__init__(
            box_source=dict(type='HeatmapBoxSource',
                            generator=proposal_generator,
                            part_thr=part_thr),
            **kwargs)
