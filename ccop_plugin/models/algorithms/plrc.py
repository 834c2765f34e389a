"""PLRC: Point-Level Region Contrast for object detection pre-training."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ccop_plugin.utils.view_geometry import map_points_between_views
from ..utils.data_samples import get_view_bboxes
from ..utils.point_sampling import (
    grid_centres,
    read_points,
    relative_points_in_boxes,
    select_key_points,
)
from ..utils.queue import KeyQueue, remap_queue_keys


@MODELS.register_module()
class PLRC(BaseSelfSupervisor):
    """PLRC.

    Implementation of `Point-Level Region Contrast for Object Detection
    Pre-Training <https://arxiv.org/abs/2202.04639>`_ (Bai et al., CVPR
    2022; reference code facebookresearch/PLRC).

    Regions are the ``view_bboxes`` of the data samples: a 4x4 grid of
    pseudo-regions (``GridRegions`` + ``BoxAwareMultiView``) by default, or
    selective-search boxes (``LoadProposals``) -- row ``i`` is the same
    region in every view. View 0 is the query, view 1 the key (momentum
    encoder); the distillation teacher (momentum encoder) reads view 2 when
    present (the "second crop"), else view 1.

    Losses (the released code's weighting is
    ``L_img + 0.7 * (0.3 L_distill + 0.3 L_point)``, hence the defaults
    ``point_loss_weight = distill_loss_weight = 0.21``); the algorithm
    samples the points and runs the encoders, the heads own the losses:

    * ``loss_img``: MoCo v2 on pooled C5 (``head``, mmpretrain
      ``ContrastiveHead``), queue ``queue_len``, T 0.2;
    * ``loss_point`` (``point_head``, :class:`PointContrastHead`): per
      region and view ``num_sampled_points`` uniform points, read with
      ``grid_sample`` from the upsampled per-pixel projection; the query
      keeps its first ``num_points``, the key ``num_points`` picked by the
      released rule (:func:`select_key_points`); key points of the same
      region (same image) are positives, all other key points of the batch
      negatives;
    * ``loss_distill`` (``distill_head``, :class:`PointDistillationHead`):
      point-affinity distillation (released ``Memory_Loss.forward`` +
      ``SelfDistillation``). For every kept query point ``q`` of view 0
      (student) and its corresponding point ``q'`` in the teacher's view
      (view 2, the "second crop": mapped exactly through
      ``view_crops``/``view_flips`` when the data samples carry them,
      dropping points outside view 2; else the same box-relative position
      in the same region, mirrored for flipped views), the head's logits
      are the affinities of ``z_q`` (student) or the momentum encoder's
      ``z_q'`` (teacher) to **all** positions of the key view's (view 1,
      momentum encoder) dense map, followed by the prototype logits. ``z``
      is the L2-normalised bottleneck of ``proto_head`` (L1-normalised for
      the key view, as released). With ``distill_points='dense'``
      (released) the distilled points are all positions of view 0's dense
      map that fall inside view 2, mapped exactly through
      ``view_crops``/``view_flips``. The head centres the teacher (its
      ``center`` buffer); its teacher temperature warms up through
      :class:`~ccop_plugin.engine.TeacherTempWarmupHook` (``custom_hooks``
      of the PLRC configs).

    Args:
        backbone (dict): ResNet, ``out_indices=(3, )``.
        neck (dict): Image neck (``MoCoV2Neck``).
        head (dict): Image ``ContrastiveHead``.
        point_neck (dict): ``DensePointNeck``.
        proto_head (dict): ``PointPrototypeHead`` (per pixel on C5).
        point_head (dict): ``PointContrastHead``.
        distill_head (dict): ``PointDistillationHead``; its
            ``num_key_points`` is the size of the key view's dense map
            (``(H / 32 * scale) ** 2``, 3136 for 224 inputs) and its
            ``num_prototypes`` that of ``proto_head``.
        queue_len (int): Defaults to 65536.
        feat_dim (int): Defaults to 128.
        momentum (float): mmengine EMA momentum. Defaults to 0.001.
        num_points (int): Points kept per region and view. Defaults to 16.
        num_sampled_points (int): Points sampled per region and view.
            Defaults to 32.
        distill_points (str): ``'dense'`` (released: every position of the
            student's dense map inside the teacher's view; needs
            ``view_crops``/``view_flips`` in the data samples) or
            ``'region'`` (the kept region points). Defaults to
            ``'region'``.
        img_loss_weight, point_loss_weight, distill_loss_weight (float):
            Defaults to 1, 0.21, 0.21.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 point_neck: dict,
                 proto_head: dict,
                 point_head: dict,
                 distill_head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 num_points: int = 16,
                 num_sampled_points: int = 32,
                 distill_points: str = 'region',
                 img_loss_weight: float = 1.,
                 point_loss_weight: float = 0.21,
                 distill_loss_weight: float = 0.21,
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
        self.point_neck = MODELS.build(point_neck)
        self.proto_head = MODELS.build(proto_head)
        self.point_head = MODELS.build(point_head)
        self.distill_head = MODELS.build(distill_head)
        if (self.distill_head.distill_prototypes
                and self.distill_head.num_prototypes !=
                self.proto_head.prototypes.out_features):
            raise ValueError(
                f'PLRC: distill_head.num_prototypes '
                f'({self.distill_head.num_prototypes}) != proto_head '
                f'num_prototypes ({self.proto_head.prototypes.out_features})')
        self.encoder_k = ExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck, self.point_neck,
                          self.proto_head), momentum)
        self.queue_len = queue_len
        if num_sampled_points < num_points:
            raise ValueError(f'num_sampled_points ({num_sampled_points}) < '
                             f'num_points ({num_points})')
        self.num_points = num_points
        self.num_sampled_points = num_sampled_points
        if distill_points not in ('dense', 'region'):
            raise ValueError("distill_points must be 'dense' or 'region', "
                             f'got {distill_points!r}')
        self.distill_points = distill_points
        self.img_loss_weight = img_loss_weight
        self.point_loss_weight = point_loss_weight
        self.distill_loss_weight = distill_loss_weight
        self.queue = KeyQueue(feat_dim, queue_len)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Read checkpoints written before the distillation head: the
        centre was the algorithm's ``center`` buffer, and an ``iter`` buffer
        drove the teacher temperature (now ``TeacherTempWarmupHook``, from
        ``runner.iter``); and those from before the queue module (the queue
        as the buffers ``queue`` and ``queue_ptr``)."""
        remap_queue_keys(state_dict, {prefix + 'queue': prefix + 'queue'})
        old, new = prefix + 'center', prefix + 'distill_head.center'
        if old in state_dict and new not in state_dict:
            state_dict[new] = state_dict.pop(old)
        state_dict.pop(prefix + 'iter', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Forward in training.

        Args:
            inputs (List[torch.Tensor]): ``V >= 2`` views ``(B, 3, H, W)``.
            data_samples (List[DataSample]): ``view_bboxes`` ``(V, N_b, 4)``.

        Returns:
            Dict[str, torch.Tensor]: ``loss_img``, ``loss_point``,
            ``loss_distill``.
        """
        assert isinstance(inputs, list) and len(inputs) >= 2
        im_q, im_k = inputs[0], inputs[1]
        t_view = 2 if len(inputs) > 2 else 1
        size = im_q.shape[-2:]
        regions = get_view_bboxes(data_samples, im_q.shape[0], t_view + 1,
                                  im_q.device)

        c5_q = self.backbone(im_q)[-1]
        img_q = F.normalize(self.neck((c5_q, ))[0], dim=1)
        dense_q = self.point_neck(c5_q)
        z_q, logit_q = self.proto_head.forward_dense(c5_q)

        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.point_neck,
                              self.proto_head))
            backbone_k, neck_k, point_neck_k, proto_k = self.encoder_k.module
            c5_k = backbone_k(im_k)[-1]
            img_k = F.normalize(neck_k((c5_k, ))[0], dim=1)
            dense_k = point_neck_k(c5_k)
            # key-view points for the affinities: L1-normalised (released)
            z_k, _ = proto_k.forward_dense(c5_k, p=1)
            c5_t = c5_k if t_view == 1 else backbone_k(inputs[t_view])[-1]
            z_t, logit_t = proto_k.forward_dense(c5_t)

        # image branch (MoCo v2)
        loss_img = self.head.loss(*self.queue.logits(img_q, img_k))

        # point contrast
        pts_q, pts_k, pts_t, ids = self._sample_points(regions, data_samples,
                                                       t_view)
        if ids.numel() == 0:
            loss_point = dense_q.sum() * 0.
        else:
            fq, fk = self._point_pairs(dense_q, dense_k, pts_q, pts_k, size)
            loss_point = self.point_head.loss(fq, fk, ids)

        # point-affinity distillation
        kept_q = [p[:, :self.num_points].reshape(-1, 2) for p in pts_q]
        kept_t = [p.reshape(-1, 2) for p in pts_t]
        dist_q, dist_t = self._distill_points(data_samples, kept_q, kept_t,
                                              t_view, z_q.shape[-2:], size)
        s_logits = self.distill_head.logits(z_q, logit_q, z_k, dist_q, size)
        with torch.no_grad():
            t_logits = self.distill_head.logits(z_t, logit_t, z_k, dist_t,
                                                size)
        loss_distill = self.distill_head.loss(s_logits, t_logits)

        self.queue.enqueue(img_k)
        return dict(
            loss_img=loss_img * self.img_loss_weight,
            loss_point=loss_point * self.point_loss_weight,
            loss_distill=loss_distill * self.distill_loss_weight)

    def _sample_points(self, regions: List[torch.Tensor],
                       data_samples: List[DataSample], t_view: int
                       ) -> Tuple[List[torch.Tensor], ...]:
        """``num_sampled_points`` uniform points per region and view.

        Views 0 and ``t_view`` get the same box-relative positions (the
        distillation's correspondences; the teacher keeps the first
        ``num_points``), the key view (1) independent ones; flipped views
        mirror the positions.

        Returns:
            tuple: per image ``(N_b, S, 2)`` query, ``(N_b, S, 2)`` key and
            ``(N_b, P, 2)`` teacher pixel points, and the ``(sum N_b * P,)``
            global region id of every kept query point.
        """
        P, S = self.num_points, self.num_sampled_points
        device = self.queue.keys.device
        pts_q, pts_k, pts_t, ids = [], [], [], []
        offset = 0
        for b, vb in enumerate(regions):
            n = vb.shape[1]
            flips = data_samples[b].get('view_flips', None)
            flip = [bool(flips[v]) if flips is not None else False
                    for v in range(t_view + 1)]
            rel = torch.rand(n, S, 2, device=device)
            pts_q.append(relative_points_in_boxes(rel, vb[0], flip[0]))
            pts_t.append(relative_points_in_boxes(rel[:, :P], vb[t_view],
                                                  flip[t_view]))
            pts_k.append(relative_points_in_boxes(
                torch.rand(n, S, 2, device=device), vb[1], flip[1]))
            ids.append(torch.arange(n, device=device).repeat_interleave(P) +
                       offset)
            offset += n
        ids = (torch.cat(ids) if ids else
               torch.zeros(0, dtype=torch.long, device=device))
        return pts_q, pts_k, pts_t, ids

    def _point_pairs(self, dense_q: torch.Tensor, dense_k: torch.Tensor,
                     pts_q: List[torch.Tensor], pts_k: List[torch.Tensor],
                     size: Tuple[int, int]
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Normalised query and key point features of the point contrast.

        The query keeps its first ``num_points`` per region, the key the
        ``num_points`` picked by the released rule
        (:func:`select_key_points`).

        Returns:
            tuple: ``(R * P, C)`` query and key features, region-major.
        """
        P, S = self.num_points, self.num_sampled_points
        R = sum(p.shape[0] for p in pts_q)
        fq_all = read_points(dense_q, [p.reshape(-1, 2) for p in pts_q],
                             size).reshape(R, S, -1)
        fq = F.normalize(fq_all[:, :P].reshape(R * P, -1), dim=1)
        with torch.no_grad():
            fk_all = read_points(dense_k, [p.reshape(-1, 2) for p in pts_k],
                                 size).reshape(R, S, -1)
            keep = select_key_points(fk_all, fq_all.detach(), P)
            fk = torch.gather(
                fk_all, 1, keep[..., None].expand(-1, -1, fk_all.shape[-1]))
            fk = F.normalize(fk.reshape(R * P, -1), dim=1)
        return fq, fk

    def _distill_points(self, data_samples: List[DataSample],
                        kept_q: List[torch.Tensor],
                        kept_t: List[torch.Tensor], t_view: int,
                        map_hw: Tuple[int, int], size: Tuple[int, int]):
        """Distilled points of view 0 and their counterparts in view ``t``.

        ``distill_points='dense'`` (released): every cell centre of the
        student's dense map whose image location lies inside view ``t``;
        ``'region'``: the kept region points. With ``view_crops`` and
        ``view_flips`` in the data samples the counterparts are mapped
        exactly through the image (points falling outside view ``t`` are
        dropped); else (``'region'`` only) they are the same box-relative
        positions in view ``t`` (``kept_t``).

        Returns:
            tuple: Two lists of per-image ``(M_b, 2)`` pixel points.
        """
        geo = all('view_crops' in ds and 'view_flips' in ds
                  for ds in data_samples)
        if self.distill_points == 'dense' and not geo:
            raise KeyError(
                "PLRC distill_points='dense' needs `view_crops` and "
                '`view_flips` in the data samples: pack them with '
                "PackBoxSelfSupInputs(meta_keys=(..., 'view_flips', "
                "'view_crops'))")
        if not geo:
            return kept_q, kept_t
        if self.distill_points == 'dense':  # the same cells for every image
            centres = grid_centres(*map_hw, size,
                                   device=self.queue.keys.device)
        out_q, out_t = [], []
        for b, ds in enumerate(data_samples):
            src = centres if self.distill_points == 'dense' else kept_q[b]
            crops, flips = ds.view_crops, ds.view_flips
            dst, valid = map_points_between_views(
                src, crops[0], bool(flips[0]), crops[t_view],
                bool(flips[t_view]), size)
            out_q.append(src[valid])
            out_t.append(dst[valid])
        return out_q, out_t
