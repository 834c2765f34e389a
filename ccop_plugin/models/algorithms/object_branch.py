"""CCOP's object branch: the one implementation of the object-level losses.

Per image ``N_b`` boxes visible in both views (row ``i`` the same object).
One direction (query view -> key view) runs:

RoIs -> RoI neck (query, with gradients) -> normalise ->
``curriculum.positive_keys`` (momentum RoI neck, no gradients; without a
curriculum the key box itself) -> ``KeyQueue.logits`` -> RoI head
(``ObjectContrastiveHead``) -> intra head
(``IntraObjectDiscriminationHead``) -> the positives go to the RoI queue.

:class:`ObjectBranch` owns the RoI neck, the heads, the curriculum, the RoI
queue and the momentum copy of its own neck and RoI neck. Two owners feed it
feature maps:

* :class:`~ccop_plugin.models.algorithms.CCOP` (MoCo v2's image branch plus
  this branch): the FPN is CCOP's ``neck``, so the branch has none; CCOP's
  key pass (momentum backbone + FPN) gives the key maps, shared by the image
  and the object branch;
* ``WithObjectBranch`` (any mmpretrain algorithm): the branch records the
  algorithm's backbone stages with forward hooks (:meth:`attach`,
  :meth:`arm`, :meth:`loss`) and runs its own ``neck`` over them.
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.profiler import record_function

from ..utils.data_samples import get_view_bboxes
from ..utils.fused_ema import FusedExponentialMovingAverage
from ..utils.queue import KeyQueue, remap_queue_keys
from ..utils.rois import boxes_to_rois
from .stage_tap import KEY_ENCODER_ATTRS, StageTap, view_index

Maps = List[torch.Tensor]


@MODELS.register_module()
class ObjectBranch(BaseModule):
    """CCOP's object branch (module docstring).

    Args:
        roi_neck (dict): ``ObjectRoINeck`` over the (neck's) feature maps.
        roi_head (dict, optional): ``ObjectContrastiveHead``; None leaves the
            inter-image RoI loss out (the RoI queue is then not filled).
        in_layers (Sequence[str]): Backbone sub-modules whose outputs feed
            the branch, finest first (``WithObjectBranch`` only). Defaults to
            ResNet's four stages.
        neck (dict, optional): Neck over the stage outputs (e.g.
            ``mmdet.FPN``); None feeds the given maps to the RoI neck.
        intra_head (dict, optional): ``IntraObjectDiscriminationHead``;
            None leaves the intra-image loss out.
        curriculum (dict, optional): ``BoxJitterCurriculum`` (``type`` may
            be left out); None uses the key box itself as the positive (no
            spatial noise).
        roi_queue_len (int): RoI queue length. Defaults to 65536.
        feat_dim (int): Embedding dimension. Defaults to 128.
        momentum (float): EMA momentum of the branch's key neck and RoI neck
            (mmengine convention: 0.001 == 0.999). Defaults to 0.001.
        roi_loss_weight (float): Defaults to 1.
        intra_loss_weight (float): Defaults to 1.
        key_encoder (str, optional): Attribute of the algorithm holding its
            momentum ``Sequential(backbone, neck)`` (``WithObjectBranch``);
            None tries :data:`KEY_ENCODER_ATTRS`.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 roi_neck: dict,
                 roi_head: Optional[dict],
                 in_layers: Sequence[str] = ('layer1', 'layer2', 'layer3',
                                             'layer4'),
                 neck: Optional[dict] = None,
                 intra_head: Optional[dict] = None,
                 curriculum: Optional[dict] = None,
                 roi_queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 roi_loss_weight: float = 1.,
                 intra_loss_weight: float = 1.,
                 key_encoder: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_layers = tuple(in_layers)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.roi_neck = MODELS.build(roi_neck)
        self.roi_head = (MODELS.build(roi_head)
                         if roi_head is not None else None)
        self.intra_head = (MODELS.build(intra_head)
                           if intra_head is not None else None)
        self.curriculum = (MODELS.build(
            dict(dict(type='BoxJitterCurriculum'), **curriculum))
                           if curriculum is not None else None)
        self.encoder_k = FusedExponentialMovingAverage(
            self._key_modules(), momentum)
        self.roi_loss_weight = roi_loss_weight
        self.intra_loss_weight = intra_loss_weight
        self.key_encoder = key_encoder
        self.roi_queue = KeyQueue(feat_dim, roi_queue_len)
        # set by attach(); plain attributes, not sub-modules
        self._online_tap: Optional[StageTap] = None
        self._key_tap: Optional[StageTap] = None
        self._key_backbone: List[nn.Module] = []

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints from before the queue module hold the RoI queue as
        the buffers ``roi_queue`` and ``roi_queue_ptr``."""
        remap_queue_keys(state_dict,
                         {prefix + 'roi_queue': prefix + 'roi_queue'})
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _key_modules(self) -> nn.Sequential:
        parts = [self.neck] if self.neck is not None else []
        return nn.Sequential(*parts, self.roi_neck)

    @torch.no_grad()
    def update_key_encoder(self) -> None:
        """One EMA step of the momentum neck and RoI neck."""
        self.encoder_k.update_parameters(self._key_modules())

    # ------------------------------------------------------- the one sequence
    def pair_losses(self, feats_q: Maps, key_feats: Callable[[], Maps],
                    boxes_q: List[torch.Tensor], boxes_k: List[torch.Tensor],
                    img_shape: Tuple[int, int]
                    ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """Unweighted losses of one direction and the keys to enqueue.

        Args:
            feats_q (list[Tensor]): Query-view maps (the neck's input).
            key_feats (callable): Returns the key view's maps from the
                momentum encoder (called once, without gradients, after the
                query RoIs are embedded).
            boxes_q, boxes_k (list[Tensor]): Per-image ``(N_b, 4)`` boxes of
                the query and key view.
            img_shape (tuple[int, int]): ``(H, W)`` of the key view.

        Returns:
            tuple: ``loss_roi`` / ``loss_intra`` (those whose head is set)
            and the ``(N, C)`` positive keys.
        """
        device = feats_q[0].device
        rois_q = boxes_to_rois(boxes_q).to(device)
        rois_k = boxes_to_rois(boxes_k).to(device)
        fpn_q = self.neck(feats_q) if self.neck is not None else feats_q
        with record_function('ccop:object_branch'):
            roi_q = F.normalize(self.roi_neck(fpn_q, rois_q), dim=1)
        with torch.no_grad():
            key_mods = list(self.encoder_k.module)
            fpn_k = key_feats()
            if self.neck is not None:
                fpn_k = key_mods[0](fpn_k)
            roi_k_pos, roi_k_ori = self._positive_keys(
                fpn_k, boxes_k, rois_k, roi_q, img_shape, key_mods[-1])
        losses = {}
        with record_function('ccop:object_branch'):
            if self.roi_head is not None:
                losses['loss_roi'] = self.roi_head.loss(
                    *self.roi_queue.logits(roi_q, roi_k_pos))
            if self.intra_head is not None:
                losses['loss_intra'] = self.intra_head.loss(
                    roi_q, roi_k_ori, rois_k[:, 1:], rois_k[:, 0].long())
        return losses, roi_k_pos

    def _positive_keys(self, fpn_k: Maps, boxes_k: List[torch.Tensor],
                       rois_k: torch.Tensor, roi_q: torch.Tensor,
                       img_shape: Tuple[int, int], roi_neck_k: nn.Module
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Positive and original key embeddings: the curriculum's least
        query-similar valid jittered key box, or the key box itself."""

        def embed(rois):
            return F.normalize(roi_neck_k(fpn_k, rois), dim=1)

        if self.curriculum is None:
            emb = embed(rois_k)
            return emb, emb
        with record_function('ccop:curriculum'):
            return self.curriculum.positive_keys(boxes_k, img_shape, roi_q,
                                                 embed)

    def finish(self, losses: List[Dict[str, torch.Tensor]],
               keys: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Enqueue the positives of every direction; mean, weighted
        losses."""
        if self.roi_head is not None:
            self.roi_queue.enqueue(torch.cat(keys))
        weights = dict(loss_roi=self.roi_loss_weight,
                       loss_intra=self.intra_loss_weight)
        return {
            k: sum(d[k] for d in losses) / len(losses) * weights[k]
            for k in losses[0]
        }

    # ------------------------------------------- WithObjectBranch: the hooks
    def attach(self, algorithm: nn.Module) -> None:
        """Hook the algorithm's online and momentum backbones."""
        names = ([self.key_encoder]
                 if self.key_encoder else list(KEY_ENCODER_ATTRS))
        ema = next((getattr(algorithm, n) for n in names
                    if isinstance(getattr(algorithm, n, None), nn.Module)),
                   None)
        if ema is None or not hasattr(ema, 'module'):
            raise AttributeError(
                f'ObjectBranch: {type(algorithm).__name__} has no momentum '
                f'encoder among {names} (set object_branch.key_encoder)')
        key_backbone = ema.module[0]
        self._online_tap = StageTap(algorithm.backbone, self.in_layers)
        self._key_tap = StageTap(key_backbone, self.in_layers)
        self._key_backbone = [key_backbone]

    def arm(self) -> None:
        """Record the backbones' stage outputs until :meth:`loss`."""
        self._online_tap.calls, self._key_tap.calls = [], []
        self._online_tap.armed = self._key_tap.armed = True

    def disarm(self) -> None:
        """Stop recording and drop what was recorded."""
        self._online_tap.take()
        self._key_tap.take()

    def _key_features(self, view: torch.Tensor,
                      recorded: List[Tuple[torch.Tensor, List]]) -> Maps:
        """Stage outputs of the momentum backbone on ``view`` (no grad)."""
        for x, feats in recorded:
            if x is view and all(f is not None for f in feats):
                return feats  # the algorithm ran it unshuffled (BYOL)
        tap = self._key_tap
        shuffled, idx_unshuffle = batch_shuffle_ddp(view)
        tap.calls, tap.armed = [], True
        try:
            self._key_backbone[0](shuffled)
        finally:
            calls = tap.take()
        return [batch_unshuffle_ddp(f, idx_unshuffle) for f in calls[-1][1]]

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Object-level losses of the views recorded since :meth:`arm`:
        every view the algorithm ran its online backbone on is a query view,
        the other view its key view (the losses are averaged)."""
        online = self._online_tap.take()
        recorded_k = self._key_tap.take()
        pairs = []
        for x, feats in online:
            q = view_index(x, inputs[:2])
            if q >= 0 and all(f is not None for f in feats):
                pairs.append((q, 1 - q, feats))
        if not pairs:
            raise RuntimeError(
                'ObjectBranch: the algorithm did not run its backbone on an '
                'input view (self.backbone(inputs[v])), so there are no '
                'query features; this algorithm cannot take the branch')
        view_boxes = get_view_bboxes(data_samples, inputs[0].shape[0], 2,
                                     inputs[0].device)
        self.update_key_encoder()
        losses, keys = [], []
        for q, k, feats_q in pairs:
            pair, roi_k = self.pair_losses(
                feats_q,
                lambda k=k: self._key_features(inputs[k], recorded_k),
                [vb[q] for vb in view_boxes], [vb[k] for vb in view_boxes],
                inputs[k].shape[-2:])
            losses.append(pair)
            keys.append(roi_k)
        return self.finish(losses, keys)
