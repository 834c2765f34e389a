"""PLRC: Point-Level Region Contrast for object detection pre-training."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.model import ExponentialMovingAverage

from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..utils.dist_utils import all_gather_variable, enqueue_keys
from ccop_plugin.utils.view_geometry import map_points_between_views
from ..utils.point_sampling import (dino_distillation_loss,
                                    multi_positive_infonce, pad_by_image,
                                    grid_centres,
                                    point_pair_labels, read_points,
                                    relative_points_in_boxes,
                                    select_key_points)
from ..utils.view_geometry import get_view_bboxes


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
    ``point_loss_weight = distill_loss_weight = 0.21``):

    * ``loss_img``: MoCo v2 on pooled C5, queue ``queue_len``, T 0.2;
    * ``loss_point``: per region and view ``num_sampled_points`` uniform
      points, read with ``grid_sample`` from the upsampled per-pixel
      projection; the query keeps its first ``num_points``, the key
      ``num_points`` picked by the released rule (:func:`select_key_points`);
      key points of the same region (same image) are positives, all other
      key points of the batch negatives, T ``point_temperature``;
    * ``loss_distill``: point-affinity distillation (released
      ``Memory_Loss.forward`` + ``SelfDistillation``). For every kept query
      point ``q`` of view 0 (student) and its corresponding point ``q'`` in
      the teacher's view (view 2, the "second crop": mapped exactly through
      ``view_crops``/``view_flips`` when the data samples carry them,
      dropping points outside view 2; else the same box-relative position
      in the same region, mirrored for flipped views), the
      student's logits are ``affinity_scale * <z_q, k_j>`` for **all**
      positions ``j`` of the key view's (view 1, momentum encoder) dense
      map, followed by its ``num_prototypes`` prototype logits when
      ``distill_prototypes``; the teacher's are the same from the momentum
      encoder's ``z_q'``. ``z`` is the L2-normalised bottleneck of
      ``proto_head`` (L1-normalised for the key view, as released). With
      ``distill_points='dense'`` (released) the distilled points are all
      positions of view 0's dense map that fall inside view 2, mapped
      exactly through ``view_crops``/``view_flips``. Loss:
      DINO cross-entropy (:func:`dino_distillation_loss`), student T
      ``student_temp``, teacher T rising linearly ``teacher_temp[0] ->
      teacher_temp[1]`` over ``teacher_temp_warmup_iters``, teacher logits
      centred by ``center`` ``(1, num_key_points [+ num_prototypes])``, an
      EMA (``center_momentum``) of the mean teacher logit vector over all
      distilled points of the (global) batch.

    Args:
        backbone (dict): ResNet, ``out_indices=(3, )``.
        neck (dict): Image neck (``MoCoV2Neck``).
        head (dict): Image ``ContrastiveHead``.
        point_neck (dict): ``DensePointNeck``.
        proto_head (dict): ``PointPrototypeHead`` (per pixel on C5).
        queue_len (int): Defaults to 65536.
        feat_dim (int): Defaults to 128.
        momentum (float): mmengine EMA momentum. Defaults to 0.001.
        num_points (int): Points kept per region and view. Defaults to 16.
        num_sampled_points (int): Points sampled per region and view.
            Defaults to 32.
        num_key_points (int): Positions of the key view's dense map
            (``(H / 32 * scale) ** 2``; 56x56 for 224 inputs). Defaults to
            3136.
        affinity_scale (float): Defaults to 1 / 128 (released).
        distill_prototypes (bool): Append the prototype logits to the
            affinities (released). Defaults to True.
        distill_points (str): ``'dense'`` (released: every position of the
            student's dense map inside the teacher's view; needs
            ``view_crops``/``view_flips`` in the data samples) or
            ``'region'`` (the kept region points). Defaults to
            ``'region'``.
        point_temperature (float): Defaults to 0.2.
        student_temp (float): Defaults to 0.1.
        teacher_temp (tuple): Defaults to (0.04, 0.07).
        teacher_temp_warmup_iters (int): Defaults to 0 (no warm-up).
        center_momentum (float): Defaults to 0.9.
        img_loss_weight, point_loss_weight, distill_loss_weight (float):
            Defaults to 1, 0.21, 0.21.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 point_neck: dict,
                 proto_head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 num_points: int = 16,
                 num_sampled_points: int = 32,
                 num_key_points: int = 3136,
                 affinity_scale: float = 1. / 128,
                 distill_prototypes: bool = True,
                 distill_points: str = 'region',
                 point_temperature: float = 0.2,
                 student_temp: float = 0.1,
                 teacher_temp=(0.04, 0.07),
                 teacher_temp_warmup_iters: int = 0,
                 center_momentum: float = 0.9,
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
        self.encoder_k = ExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck, self.point_neck,
                          self.proto_head), momentum)
        self.queue_len = queue_len
        if num_sampled_points < num_points:
            raise ValueError(f'num_sampled_points ({num_sampled_points}) < '
                             f'num_points ({num_points})')
        self.num_points = num_points
        self.num_sampled_points = num_sampled_points
        self.num_key_points = num_key_points
        self.affinity_scale = affinity_scale
        self.distill_prototypes = distill_prototypes
        if distill_points not in ('dense', 'region'):
            raise ValueError("distill_points must be 'dense' or 'region', "
                             f'got {distill_points!r}')
        self.distill_points = distill_points
        self.point_temperature = point_temperature
        self.student_temp = student_temp
        self.teacher_temp = tuple(teacher_temp)
        self.teacher_temp_warmup_iters = teacher_temp_warmup_iters
        self.center_momentum = center_momentum
        self.img_loss_weight = img_loss_weight
        self.point_loss_weight = point_loss_weight
        self.distill_loss_weight = distill_loss_weight
        self.register_buffer(
            'queue', F.normalize(torch.randn(feat_dim, queue_len), dim=0))
        self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))
        center_dim = num_key_points + (
            self.proto_head.prototypes.out_features if distill_prototypes
            else 0)
        self.register_buffer('center', torch.zeros(1, center_dim))
        self.register_buffer('iter', torch.zeros(1, dtype=torch.long))

    def current_teacher_temp(self) -> float:
        t0, t1 = self.teacher_temp
        n = self.teacher_temp_warmup_iters
        if n <= 0:
            return t0 if t0 == t1 else t1
        return t0 + (t1 - t0) * min(float(self.iter.item()) / n, 1.)

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
        device = im_q.device
        regions = get_view_bboxes(data_samples, im_q.shape[0], t_view + 1,
                                  device)
        P, S = self.num_points, self.num_sampled_points

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
        if z_k.shape[2] * z_k.shape[3] != self.num_key_points:
            raise ValueError(
                f'PLRC: the key view dense map has {z_k.shape[2]}x'
                f'{z_k.shape[3]} positions but num_key_points='
                f'{self.num_key_points}; set num_key_points to match the '
                'input size')

        # S points per region at the same box-relative positions in views
        # 0 and t (correspondences for the distillation); independent ones
        # in the key view
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
        ids = torch.cat(ids) if ids else im_q.new_zeros(0, dtype=torch.long)

        loss_img = self.head.loss(
            torch.einsum('nc,nc->n', img_q, img_k).unsqueeze(-1),
            torch.einsum('nc,ck->nk', img_q, self.queue.clone().detach()))

        if ids.numel() == 0:
            loss_point = dense_q.sum() * 0.
        else:
            R = offset
            # point contrast: query keeps its first P points, key P picked
            fq_all = read_points(dense_q, [p.reshape(-1, 2) for p in pts_q],
                                 size).reshape(R, S, -1)
            fq = F.normalize(fq_all[:, :P].reshape(R * P, -1), dim=1)
            with torch.no_grad():
                fk_all = read_points(dense_k,
                                     [p.reshape(-1, 2) for p in pts_k],
                                     size).reshape(R, S, -1)
                keep = select_key_points(fk_all, fq_all.detach(), P)
                fk = torch.gather(
                    fk_all, 1,
                    keep[..., None].expand(-1, -1, fk_all.shape[-1]))
                fk = F.normalize(fk.reshape(R * P, -1), dim=1)
            pos = point_pair_labels(ids, ids)
            loss_point = multi_positive_infonce(fq @ fk.t(), pos,
                                                self.point_temperature)

        # point-affinity distillation
        kept_q = [p[:, :P].reshape(-1, 2) for p in pts_q]
        kept_t = [p.reshape(-1, 2) for p in pts_t]
        dist_q, dist_t = self._distill_points(data_samples, kept_q, kept_t,
                                              t_view, z_q.shape[-2:], size)
        counts = [p.shape[0] for p in dist_q]
        s_logits = self._distill_logits(z_q, logit_q, z_k, dist_q, counts,
                                        size)
        with torch.no_grad():
            t_logits = self._distill_logits(z_t, logit_t, z_k, dist_t,
                                            counts, size)
        loss_distill = dino_distillation_loss(
            s_logits, t_logits, self.center, self.student_temp,
            self.current_teacher_temp())
        self._update_center(t_logits)

        self._dequeue_and_enqueue(img_k)
        self.iter += 1
        return dict(
            loss_img=loss_img * self.img_loss_weight,
            loss_point=loss_point * self.point_loss_weight,
            loss_distill=loss_distill * self.distill_loss_weight)

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
            centres = grid_centres(*map_hw, size, device=self.center.device)
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

    def _distill_logits(self, z: torch.Tensor, logits: torch.Tensor,
                        z_key: torch.Tensor, points: List[torch.Tensor],
                        counts: List[int],
                        size: Tuple[int, int]) -> torch.Tensor:
        """Distillation logits of the points of one view.

        Args:
            z (torch.Tensor): ``(B, D, h, w)`` L2-normalised bottleneck.
            logits (torch.Tensor): ``(B, K, h, w)`` prototype logits.
            z_key (torch.Tensor): ``(B, D, hk, wk)`` key-view bottleneck.
            points (list[torch.Tensor]): Per image ``(counts[b], 2)`` pixels.
            counts (list[int]): Points per image.
            size (tuple): Input ``(H, W)``.

        Returns:
            torch.Tensor: ``(sum counts, hk * wk [+ K])``: row ``m`` (image
            ``b``) is ``affinity_scale * <z_m, z_key[b, :, j]>`` over all key
            positions ``j``, then the point's prototype logits.
        """
        feat, mask = pad_by_image(read_points(z, points, size), counts)
        out = torch.bmm(feat, z_key.flatten(2)) * self.affinity_scale
        out = out[mask]
        if self.distill_prototypes:
            out = torch.cat([out, read_points(logits, points, size)], -1)
        return out

    @torch.no_grad()
    def _update_center(self, t_logits: torch.Tensor) -> None:
        total = t_logits.sum(0, keepdim=True)
        count = t_logits.new_tensor([float(t_logits.shape[0])])
        all_reduce(total)  # no-op without a process group
        all_reduce(count)
        if count.item() > 0:  # no point anywhere: keep the centre
            self.center.mul_(self.center_momentum).add_(
                total / count * (1 - self.center_momentum))

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        enqueue_keys(self.queue, self.queue_ptr, all_gather_variable(keys))
