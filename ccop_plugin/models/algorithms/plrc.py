"""PLRC: Point-Level Region Contrast for object detection pre-training."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage

from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from ..utils.dist_utils import all_gather_variable, enqueue_keys
from ..utils.point_sampling import (multi_positive_infonce, point_pair_labels,
                                    read_points, sample_points_in_boxes)


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
    * ``loss_point``: ``num_points`` points per region and view, read with
      ``grid_sample`` from the upsampled per-pixel projection; key points of
      the same region (same image) are positives, all other key points of
      the batch negatives, T ``point_temperature``;
    * ``loss_distill``: DINO-style cross-entropy between the student's
      prototype distribution of each query point (T ``student_temp``) and
      the teacher's, averaged over the teacher points of the same region,
      centred (EMA ``center_momentum``) and sharpened with a teacher
      temperature rising linearly from ``teacher_temp[0]`` to
      ``teacher_temp[1]`` over ``teacher_temp_warmup_iters``.

    Args:
        backbone (dict): ResNet, ``out_indices=(3, )``.
        neck (dict): Image neck (``MoCoV2Neck``).
        head (dict): Image ``ContrastiveHead``.
        point_neck (dict): ``DensePointNeck``.
        proto_head (dict): ``PointPrototypeHead``.
        queue_len (int): Defaults to 65536.
        feat_dim (int): Defaults to 128.
        momentum (float): mmengine EMA momentum. Defaults to 0.001.
        num_points (int): Points per region and view. Defaults to 16.
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
        self.num_points = num_points
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
        self.register_buffer('center',
                             torch.zeros(1, proto_head['num_prototypes']))
        self.register_buffer('iter', torch.zeros(1, dtype=torch.long))

    def current_teacher_temp(self) -> float:
        t0, t1 = self.teacher_temp
        n = self.teacher_temp_warmup_iters
        if n <= 0:
            return t0 if t0 == t1 else t1
        return t0 + (t1 - t0) * min(float(self.iter.item()) / n, 1.)

    @staticmethod
    def _regions(data_samples: List[DataSample], num_views: int,
                 device: torch.device) -> List[torch.Tensor]:
        out = []
        for i, ds in enumerate(data_samples):
            if 'view_bboxes' not in ds:
                raise KeyError(f'data sample {i} has no `view_bboxes`: add '
                               'GridRegions (or LoadProposals), '
                               'BoxAwareMultiView and PackBoxSelfSupInputs')
            vb = torch.as_tensor(ds.view_bboxes, dtype=torch.float32)
            vb = vb.reshape(vb.shape[0], -1, 4).to(device)
            if vb.shape[0] < num_views:
                raise ValueError(f'data sample {i}: view_bboxes has '
                                 f'{vb.shape[0]} views, need {num_views}')
            out.append(vb)
        return out

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
        regions = self._regions(data_samples, t_view + 1, im_q.device)
        P = self.num_points

        c5_q = self.backbone(im_q)[-1]
        img_q = F.normalize(self.neck((c5_q, ))[0], dim=1)
        dense_q = self.point_neck(c5_q)

        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.point_neck,
                              self.proto_head))
            backbone_k, neck_k, point_neck_k, proto_k = self.encoder_k.module
            c5_k = backbone_k(im_k)[-1]
            img_k = F.normalize(neck_k((c5_k, ))[0], dim=1)
            dense_k = point_neck_k(c5_k)
            dense_t = dense_k if t_view == 1 else \
                point_neck_k(backbone_k(inputs[t_view])[-1])

        # points of every region in every view; global region ids
        pts = {0: [], 1: [], t_view: []}
        ids, offset = [], 0
        for vb in regions:
            n = vb.shape[1]
            for v in pts:
                pts[v].append(
                    sample_points_in_boxes(vb[v], P).reshape(-1, 2))
            ids.append(torch.arange(n, device=im_q.device).repeat_interleave(
                P) + offset)
            offset += n
        ids = torch.cat(ids) if ids else im_q.new_zeros(0, dtype=torch.long)

        loss_img = self.head.loss(
            torch.einsum('nc,nc->n', img_q, img_k).unsqueeze(-1),
            torch.einsum('nc,ck->nk', img_q, self.queue.clone().detach()))

        if ids.numel() == 0:
            zero = dense_q.sum() * 0.
            loss_point = loss_distill = zero
        else:
            fq = F.normalize(read_points(dense_q, pts[0], size), dim=1)
            with torch.no_grad():
                fk = F.normalize(read_points(dense_k, pts[1], size), dim=1)
                ft = F.normalize(
                    read_points(dense_t, pts[t_view], size), dim=1)
            pos = point_pair_labels(ids, ids)
            loss_point = multi_positive_infonce(fq @ fk.t(), pos,
                                                self.point_temperature)
            # DINO-style distillation, teacher averaged over the region
            s_logits = self.proto_head(fq) / self.student_temp
            with torch.no_grad():
                t_logits = proto_k(ft)
                t_prob = F.softmax(
                    (t_logits - self.center) / self.current_teacher_temp(),
                    dim=1)
                posf = pos.float()
                target = posf @ t_prob / posf.sum(1, keepdim=True)
                self._update_center(t_logits)
            loss_distill = -(target * F.log_softmax(s_logits, 1)).sum(1)
            loss_distill = loss_distill.mean()

        self._dequeue_and_enqueue(img_k)
        self.iter += 1
        return dict(
            loss_img=loss_img * self.img_loss_weight,
            loss_point=loss_point * self.point_loss_weight,
            loss_distill=loss_distill * self.distill_loss_weight)

    @torch.no_grad()
    def _update_center(self, t_logits: torch.Tensor) -> None:
        total = t_logits.sum(0, keepdim=True)
        count = t_logits.new_tensor([float(t_logits.shape[0])])
        if torch.distributed.is_available() and \
                torch.distributed.is_initialized():
            torch.distributed.all_reduce(total)
            torch.distributed.all_reduce(count)
        self.center.mul_(self.center_momentum).add_(
            total / count.clamp_min(1.) * (1 - self.center_momentum))

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        enqueue_keys(self.queue, self.queue_ptr, all_gather_variable(keys))
