"""Point-level heads of PLRC: point contrast and point-affinity distillation.

`Point-Level Region Contrast for Object Detection Pre-Training
<https://arxiv.org/abs/2202.04639>`_ (Bai et al., CVPR 2022; reference code
facebookresearch/PLRC). The algorithm (:class:`~ccop_plugin.models.PLRC`)
samples the points and runs the encoders; these heads own the losses, and
the distillation head its centre, as mmpretrain's ``DINOHead`` does.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..utils.point_sampling import pad_by_image, read_points


def point_pair_labels(region_q: torch.Tensor,
                      region_k: torch.Tensor) -> torch.Tensor:
    """``(Nq, Nk)`` bool: point pairs of the same (global) region id."""
    return region_q[:, None] == region_k[None, :]


def multi_positive_infonce(sim: torch.Tensor, pos: torch.Tensor,
                           temperature: float) -> torch.Tensor:
    """Contrastive loss with several positives per row.

    ``-mean_{p in P_i} log softmax_j(sim_ij / T)[p]``, averaged over the rows
    that have a positive (0 if none).
    """
    logp = F.log_softmax(sim / temperature, dim=1)
    npos = pos.sum(1)
    keep = npos > 0
    if not keep.any():
        return sim.sum() * 0.
    per_row = -(logp * pos).sum(1)[keep] / npos[keep]
    return per_row.mean()


def dino_distillation_loss(student: torch.Tensor, teacher: torch.Tensor,
                           center: torch.Tensor, student_temp: float,
                           teacher_temp: float) -> torch.Tensor:
    """DINO cross-entropy with a centred, sharpened teacher.

    ``mean_m sum_j -softmax((t_m - c) / T_t)_j log softmax(s_m / T_s)_j``;
    the teacher side carries no gradient.

    Args:
        student (torch.Tensor): ``(M, D)`` student logits.
        teacher (torch.Tensor): ``(M, D)`` teacher logits.
        center (torch.Tensor): ``(1, D)`` centre.
        student_temp (float): ``T_s``.
        teacher_temp (float): ``T_t``.

    Returns:
        torch.Tensor: Scalar (0 with a graph if ``M == 0``).
    """
    if student.shape[0] == 0:
        return student.sum() * 0.
    t = F.softmax((teacher.detach() - center) / teacher_temp, dim=-1)
    s = F.log_softmax(student / student_temp, dim=-1)
    return -(t * s).sum(-1).mean()


@MODELS.register_module()
class PointContrastHead(BaseModule):
    """Point contrast with several positives per query point.

    Query and key points of the same region (same global region id) are
    positives, every other key point of the batch a negative
    (:func:`multi_positive_infonce` on ``q @ k.T``).

    Args:
        temperature (float): Defaults to 0.2.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 temperature: float = 0.2,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.temperature = temperature

    def loss(self, query: torch.Tensor, key: torch.Tensor,
             region_ids: torch.Tensor) -> torch.Tensor:
        """Point InfoNCE.

        Args:
            query (torch.Tensor): ``(N, C)`` normalised query points.
            key (torch.Tensor): ``(N, C)`` normalised key points.
            region_ids (torch.Tensor): ``(N,)`` global region id of the
                points (the same for query row ``i`` and key row ``i``).

        Returns:
            torch.Tensor: Scalar loss.
        """
        pos = point_pair_labels(region_ids, region_ids)
        return multi_positive_infonce(query @ key.t(), pos, self.temperature)


@MODELS.register_module()
class PointDistillationHead(BaseModule):
    """PLRC's point-affinity distillation (DINO loss with a centre).

    A point's logits are ``affinity_scale * <z_point, z_key[:, j]>`` over all
    ``num_key_points`` positions ``j`` of the key view's dense map of its
    image, followed by its ``num_prototypes`` prototype logits when
    ``distill_prototypes`` (released ``Memory_Loss.forward``). The loss is
    DINO's cross-entropy between the student's and the centred, sharpened
    teacher's softmax (:func:`dino_distillation_loss`); after each loss the
    centre ``(1, num_key_points [+ num_prototypes])`` moves (EMA
    ``center_momentum``) towards the mean teacher logit vector of the global
    batch.

    ``teacher_temp`` is the current teacher temperature: the start value
    until :class:`~ccop_plugin.engine.TeacherTempWarmupHook` sets it from
    ``runner.iter`` (as mmpretrain's DINO project does with
    ``DINOTeacherTempWarmupHook``).

    Args:
        num_key_points (int): Positions of the key view's dense map
            (``(H / 32 * scale) ** 2``; 56x56 for 224 inputs).
        num_prototypes (int): Prototype logits of ``PointPrototypeHead``.
        distill_prototypes (bool): Append the prototype logits to the
            affinities (released). Defaults to True.
        affinity_scale (float): Defaults to 1 / 128 (released).
        student_temp (float): Defaults to 0.1.
        teacher_temp (float): Start teacher temperature. Defaults to 0.04.
        center_momentum (float): Defaults to 0.9.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 num_key_points: int,
                 num_prototypes: int,
                 distill_prototypes: bool = True,
                 affinity_scale: float = 1. / 128,
                 student_temp: float = 0.1,
                 teacher_temp: float = 0.04,
                 center_momentum: float = 0.9,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_key_points = num_key_points
        self.num_prototypes = num_prototypes
        self.distill_prototypes = distill_prototypes
        self.affinity_scale = affinity_scale
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.center_momentum = center_momentum
        center_dim = num_key_points + (
            num_prototypes if distill_prototypes else 0)
        self.register_buffer('center', torch.zeros(1, center_dim))

    def logits(self, z: torch.Tensor, prototype_logits: torch.Tensor,
               z_key: torch.Tensor, points: List[torch.Tensor],
               size: Tuple[int, int]) -> torch.Tensor:
        """Distillation logits of the points of one view.

        Args:
            z (torch.Tensor): ``(B, D, h, w)`` L2-normalised bottleneck.
            prototype_logits (torch.Tensor): ``(B, K, h, w)``.
            z_key (torch.Tensor): ``(B, D, hk, wk)`` key-view bottleneck.
            points (list[torch.Tensor]): Per image ``(M_b, 2)`` pixels.
            size (tuple): Input ``(H, W)``.

        Returns:
            torch.Tensor: ``(sum M_b, hk * wk [+ K])``: row ``m`` (image
            ``b``) is ``affinity_scale * <z_m, z_key[b, :, j]>`` over all key
            positions ``j``, then the point's prototype logits.
        """
        if z_key.shape[2] * z_key.shape[3] != self.num_key_points:
            raise ValueError(
                f'PLRC: the key view dense map has {z_key.shape[2]}x'
                f'{z_key.shape[3]} positions but num_key_points='
                f'{self.num_key_points}; set num_key_points to match the '
                'input size')
        counts = [p.shape[0] for p in points]
        feat, mask = pad_by_image(read_points(z, points, size), counts)
        out = torch.bmm(feat, z_key.flatten(2)) * self.affinity_scale
        out = out[mask]
        if self.distill_prototypes:
            out = torch.cat(
                [out, read_points(prototype_logits, points, size)], -1)
        return out

    def loss(self, student: torch.Tensor,
             teacher: torch.Tensor) -> torch.Tensor:
        """DINO cross-entropy at the current temperatures; then the centre
        moves towards the teacher's mean logits.

        Args:
            student (torch.Tensor): ``(M, D)`` student logits.
            teacher (torch.Tensor): ``(M, D)`` teacher logits (no gradient).

        Returns:
            torch.Tensor: Scalar loss (0 with a graph if ``M == 0``).
        """
        loss = dino_distillation_loss(student, teacher, self.center,
                                      self.student_temp, self.teacher_temp)
        self.update_center(teacher)
        return loss

    @torch.no_grad()
    def update_center(self, teacher: torch.Tensor) -> None:
        """EMA of the mean teacher logits over all ranks (kept when no rank
        has a point)."""
        total = teacher.sum(0, keepdim=True)
        count = teacher.new_tensor([float(teacher.shape[0])])
        all_reduce(total)  # no-op without a process group
        all_reduce(count)
        if count.item() > 0:
            self.center.mul_(self.center_momentum).add_(
                total / count * (1 - self.center_momentum))
