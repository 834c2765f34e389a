"""MCL: multi-level contrastive learning with montage canvases."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import get_rank
from mmengine.logging import MessageHub
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.models.utils import CosineEMA
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.dist_utils import all_gather_variable
from ..utils.montage import montage


@MODELS.register_module()
class MCL(BaseSelfSupervisor):
    """MCL.

    Implementation of `Multi-Level Contrastive Learning for Dense Prediction
    Task <https://arxiv.org/abs/2304.02010>`_ (reference code
    GuoQiushan/MCL, ``openselfsup/models/mcl.py``). Montage levels on square
    canvases of the view size ``S``: the plain view, then 2x2, 4x4, 8x8
    nearest-downsampled sub-images drawn from the batch
    (``randperm(cells * G) mod B``, built on the device by :func:`montage`).
    Each level of each side is cut from its own augmented view when the
    pipeline provides ``2 * num_levels`` views. All canvases of one side go
    through the backbone + FPN in one batch; level ``l`` is read from FPN
    output ``3 - l`` (P5..P2) so one sub-image fills one ``S/32`` cell; the
    ``projector`` (:class:`MCLProjector`: per-cell conv stack, cell pooling,
    MLP; shared) embeds every sub-image, and the ``head``
    (:class:`MCLHead`: a predictor per level, InfoNCE on cosine logits,
    temperature ``T``, scaled by ``2 T``, level weights
    ``(1/2, 1/4, 1/8, 1/8)``) contrasts it against the momentum encoder's
    P5 embedding of the other side's plain view of its source; negatives:
    all plain images of the global batch. Both directions are summed. The
    momentum encoder is a :class:`CosineEMA` (0.99 -> 1 over training, as
    the released ``BYOLHook``).

    Args:
        backbone (dict): ResNet, ``out_indices=(0, 1, 2, 3)``.
        neck (dict): ``mmdet.FPN`` with 4 outputs (P2-P5).
        projector (dict): ``MCLProjector`` (the sub-image neck).
        head (dict): ``MCLHead``; one level weight per level of ``grids``.
        grids (Sequence[int]): Sub-images per side per level.
            Defaults to (1, 2, 4, 8).
        canvas_ratios (Sequence[float]): Canvases of level ``l`` per image of
            the per-GPU batch ``B``: ``max(1, int(B * r))`` canvases (the
            released ``batch_sizes = [B, B/4, B/16, B/32]``; with
            ``B = 128`` the 8x8 level shows every image twice). The first
            level must be the plain view (grid 1, ratio 1).
            Defaults to (1, 1/4, 1/16, 1/32).
        momentum (float): Start momentum, mmengine convention (weight of the
            online parameters). Defaults to 0.01 (paper EMA 0.99).
        end_momentum (float): Defaults to 0. (EMA 1).
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 projector: dict,
                 head: dict,
                 grids: Sequence[int] = (1, 2, 4, 8),
                 canvas_ratios: Sequence[float] = (1., 1 / 4, 1 / 16,
                                                   1 / 32),
                 momentum: float = 0.01,
                 end_momentum: float = 0.,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not (len(grids) == len(self.head.level_weights) ==
                len(canvas_ratios) and 1 <= len(grids) <= 4):
            raise ValueError('grids, head.level_weights, canvas_ratios: '
                             'same length, 1 to 4 levels')
        if grids[0] != 1 or canvas_ratios[0] != 1:
            raise ValueError('the first MCL level must be the plain view '
                             '(grid 1, canvas ratio 1): it gives the keys')
        self.grids = tuple(grids)
        self.canvas_ratios = tuple(canvas_ratios)
        self.projector = MODELS.build(projector)
        self.encoder_k = CosineEMA(
            nn.Sequential(self.backbone, self.neck, self.projector),
            momentum=momentum,
            end_momentum=end_momentum)

    def _split_views(self, inputs: List[torch.Tensor]
                     ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per-level views of both sides.

        ``2 * L`` views (pipeline ``MultiView(num_views=[L, L])``, the
        released ``img_pyramid_pipe_idxs_1/2 = [0..L-1] / [L..2L-1]``):
        level ``l`` of side A uses view ``l``, of side B view ``L + l``.
        Two views: every level of a side uses that side's only view.
        """
        L = len(self.grids)
        if len(inputs) == 2 * L:
            return list(inputs[:L]), list(inputs[L:])
        if len(inputs) == 2:
            return [inputs[0]] * L, [inputs[1]] * L
        raise ValueError(f'MCL needs 2 or 2 * num_levels = {2 * L} views, '
                         f'got {len(inputs)}')

    def _pyramid(self, views: List[torch.Tensor]
                 ) -> Tuple[torch.Tensor, List[int], List[torch.Tensor]]:
        """Canvases of all levels of one side, concatenated.

        Returns:
            tuple: canvases ``(sum_l G_l, 3, S, S)``; ``G_l`` per level; the
            source batch index of every cell per level ``(G_l * g_l**2,)``
            (level 0: ``arange(B)``).
        """
        B = views[0].shape[0]
        canvases, counts, srcs = [], [], []
        for view, g, r in zip(views, self.grids, self.canvas_ratios):
            if g == 1 and r == 1:
                canvas = view
                src = torch.arange(B, device=view.device)
            else:
                canvas, _, src = montage(
                    view, g, num_canvases=max(1, int(B * r)))
            canvases.append(canvas)
            counts.append(canvas.shape[0])
            srcs.append(src.reshape(-1))
        return torch.cat(canvases), counts, srcs

    def _side_loss(self, canvas: torch.Tensor, counts: List[int],
                   srcs: List[torch.Tensor], keys_all: torch.Tensor,
                   rank_offset: int) -> List[torch.Tensor]:
        feats = self.neck(self.backbone(canvas))
        embeddings, start = [], 0
        for lvl, (g, n) in enumerate(zip(self.grids, counts)):
            embeddings.append(
                self.projector(feats[3 - lvl][start:start + n], g))
            start += n
        return self.head.loss(embeddings, keys_all,
                              [src + rank_offset for src in srcs])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints written before ``MCLHead`` hold the predictors as
        ``predictors.*``; they are ``head.predictors.*`` now."""
        old = prefix + 'predictors.'
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + 'head.' + key[len(prefix):]] = \
                state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _embed_keys(self, canvas: torch.Tensor, num: int) -> torch.Tensor:
        # the released code runs the momentum encoder on the whole canvas
        # batch (BN statistics included) and keeps P5 of the plain views
        backbone_k, neck_k, proj_k = self.encoder_k.module
        p5 = neck_k(backbone_k(canvas))[3]
        return F.normalize(proj_k(p5, 1)[:num], dim=1)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Forward in training.

        Args:
            inputs (List[torch.Tensor]): ``2`` or ``2 * num_levels`` views
                ``(B, 3, S, S)`` (see :meth:`_split_views`); ``S`` a
                multiple of 32 (224 in the paper, 64 in the tiny config) so
                that every sub-image fills an ``S/32`` cell of its level.
            data_samples (List[DataSample]): Unused.

        Returns:
            Dict[str, torch.Tensor]: ``loss_l0`` .. one per level (weighted,
            summed over both directions).
        """
        assert isinstance(inputs, list)
        views_a, views_b = self._split_views(inputs)
        B = views_a[0].shape[0]
        canvas_a, counts_a, srcs_a = self._pyramid(views_a)
        canvas_b, counts_b, srcs_b = self._pyramid(views_b)
        if (int(self.encoder_k.steps) > 0 and MessageHub.get_current_instance()
                .get_info('max_iters') is None):
            raise RuntimeError(
                'MCL: the CosineEMA momentum schedule reads max_iters from '
                'the MessageHub (set by the runner\'s RuntimeInfoHook); '
                'outside a runner call MessageHub.get_current_instance()'
                '.update_info("max_iters", N) first')
        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.projector))
            ka_all = all_gather_variable(self._embed_keys(canvas_a, B))
            kb_all = all_gather_variable(self._embed_keys(canvas_b, B))
        # assumes equal per-rank batch (DistributedSampler default)
        off = get_rank() * B
        a = self._side_loss(canvas_a, counts_a, srcs_a, kb_all, off)
        b = self._side_loss(canvas_b, counts_b, srcs_b, ka_all, off)
        return {f'loss_l{i}': la + lb for i, (la, lb) in enumerate(zip(a, b))}
