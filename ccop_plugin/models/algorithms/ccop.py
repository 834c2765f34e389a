"""CCOP: object-level self-supervised pre-training for detection.

Recipe (paper setting, see
``configs/ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py``):

* Encoders: ResNet-50 (``out_indices=(0, 1, 2, 3)``, BN) + FPN (BN, 256 ch,
  P2-P5) for the query; a momentum copy (``encoder_k``, mmengine
  ``ExponentialMovingAverage(momentum=0.001)`` == paper momentum 0.999,
  updated with multi-tensor kernels: ``FusedExponentialMovingAverage``) of
  backbone, FPN and image neck for the keys; the object branch keeps the
  momentum copy of its RoI neck (``object_branch.encoder_k``), updated in the
  same step.
* Image branch (MoCo v2): pooled C5 -> ``MoCoV2Neck`` 2048-2048-128, queue of
  65536, temperature 0.2, batch shuffle of the key images for BN under DDP.
* Object branch (:class:`ObjectBranch`, the same module that
  ``WithObjectBranch`` adds to other algorithms; it shares CCOP's key pass):
  per image ``N_b`` selective-search boxes visible in both views
  (``data_samples[b].view_bboxes``, ``(2, N_b, 4)``). Query RoIs from view 0,
  ``ObjectRoINeck`` (RoIAlign 7x7 from the size-assigned FPN level ->
  12544-2048-128). Key RoIs from view 1 through the
  ``BoxJitterCurriculum``: the positive of each query RoI is the least similar
  valid jittered key box. ``ObjectContrastiveHead``: InfoNCE against a queue
  of 65536 key RoIs (T 0.2), filled with the positives' key embeddings,
  gathered from all ranks (variable count per rank).
  ``IntraObjectDiscriminationHead``: triplet loss (margin 0.4) against the
  other proposals of the same image whose key boxes overlap by IoU < 0.05.
* Loss: ``loss_img + loss_roi + loss_intra`` (weights configurable).
  Ablations are configs: ``intra_head=None`` (no intra-image loss),
  ``roi_head=None`` (no inter-image RoI loss), ``curriculum=None`` (the key
  box itself is the positive).

Differences from the released code (ChenhongyiYang/CCOP ``ccop.py``):

* The RoI queue wraps around instead of dropping the keys that do not fit
  before its end; the image queue does not require ``queue_len % batch == 0``.
* The intra-image loss anchors at the query by default (paper); the released
  form (anchored at the key) is ``intra_head.anchor='key'``.
* The key embedding of each original key box is taken from the curriculum
  candidates (the box itself is the last candidate) instead of a second pass
  through the key RoI neck; they are equal unless the neck uses dropout.
* The image neck is mmpretrain's ``MoCoV2Neck`` (the reference neck has a
  dropout of 0.1 after the first fc).
* Colour augmentation runs in the data pipeline, not on the GPU with kornia.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.profiler import record_function

from ..utils.data_samples import get_view_bboxes
from ..utils.fused_ema import FusedExponentialMovingAverage
from ..utils.queue import KeyQueue, remap_queue_keys
from .object_branch import ObjectBranch

#: Names of the object branch's parts in checkpoints written before CCOP
#: held an :class:`ObjectBranch` (old -> new, relative to the model).
LEGACY_BRANCH_PREFIXES = (
    ('roi_neck.', 'object_branch.roi_neck.'),
    ('roi_head.', 'object_branch.roi_head.'),
    ('intra_head.', 'object_branch.intra_head.'),
    ('curriculum.', 'object_branch.curriculum.'),
    ('encoder_k.module.3.', 'object_branch.encoder_k.module.0.'),
)


@MODELS.register_module()
class CCOP(BaseSelfSupervisor):
    """CCOP: MoCo v2's image branch plus the object branch.

    Implementation of `Contrastive Object-level Pre-training with Spatial
    Noise Curriculum Learning <https://arxiv.org/abs/2111.13651>`_.
    Reference code: `<https://github.com/ChenhongyiYang/CCOP>`_.

    Args:
        backbone (dict): Backbone config, e.g. mmpretrain ``ResNet`` with
            ``out_indices=(0, 1, 2, 3)``.
        neck (dict): FPN config (``type='mmdet.FPN'``), P2-P5.
        img_neck (dict): Image-level neck on the last backbone stage
            (``MoCoV2Neck``).
        roi_neck (dict): RoI neck (``ObjectRoINeck``).
        head (dict): Image contrastive head (mmpretrain ``ContrastiveHead``).
        roi_head (dict, optional): Inter-image RoI head
            (``ObjectContrastiveHead``); None leaves ``loss_roi`` out.
        intra_head (dict, optional): Intra-image head
            (``IntraObjectDiscriminationHead``); None leaves ``loss_intra``
            out.
        curriculum (dict, optional): ``BoxJitterCurriculum`` config (the
            paper's is written out in
            ``configs/ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py``);
            None uses the key box itself as the positive (no spatial
            noise). Defaults to None.
        box_source (dict, optional): Boxes from the momentum encoder's last
            stage instead of the data samples' ``view_bboxes`` (e.g.
            ``HeatmapBoxSource``: proposals computed in the step); called
            without gradients after the key pass as
            ``box_source(c5_k, img_size, data_samples, boxes_q, boxes_k)``
            and returns per-image ``(boxes_q, boxes_k)``. Defaults to None
            (``view_bboxes``).
        queue_len (int): Image queue length. Defaults to 65536.
        roi_queue_len (int): RoI queue length. Defaults to 65536.
        feat_dim (int): Embedding dimension of both queues. Defaults to 128.
        momentum (float): EMA momentum of the key encoder (mmengine
            convention). Defaults to 0.001.
        img_loss_weight (float): Defaults to 1.
        roi_loss_weight (float): Defaults to 1.
        intra_loss_weight (float): Defaults to 1.
        pretrained (str, optional): Checkpoint to load. Defaults to None.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict or list[dict], optional): Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 img_neck: dict,
                 roi_neck: dict,
                 head: dict,
                 roi_head: Optional[dict],
                 intra_head: Optional[dict],
                 curriculum: Optional[dict] = None,
                 box_source: Optional[dict] = None,
                 queue_len: int = 65536,
                 roi_queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.001,
                 img_loss_weight: float = 1.,
                 roi_loss_weight: float = 1.,
                 intra_loss_weight: float = 1.,
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
        self.img_neck = MODELS.build(img_neck)
        # the FPN is CCOP's ``neck``: the branch reads its maps
        self.object_branch = ObjectBranch(
            roi_neck=roi_neck,
            roi_head=roi_head,
            intra_head=intra_head,
            curriculum=curriculum,
            roi_queue_len=0,  # drawn below, after the image queue
            feat_dim=feat_dim,
            momentum=momentum,
            roi_loss_weight=roi_loss_weight,
            intra_loss_weight=intra_loss_weight)
        self.box_source = (MODELS.build(box_source)
                           if box_source is not None else None)

        # momentum encoder of the image branch and the FPN (the object
        # branch keeps the momentum copy of its RoI neck)
        self.encoder_k = FusedExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck, self.img_neck), momentum)

        self.queue_len = queue_len
        self.roi_queue_len = roi_queue_len
        self.feat_dim = feat_dim
        self.img_loss_weight = img_loss_weight
        # image queue first, then the RoI queue: the random stream (initial
        # queues) of seeded runs is that of earlier versions
        self.queue = KeyQueue(feat_dim, queue_len)
        self.object_branch.roi_queue = KeyQueue(feat_dim, roi_queue_len)

    @property
    def curriculum(self):
        """The object branch's curriculum (what ``CurriculumHook`` drives;
        None without one)."""
        return self.object_branch.curriculum

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Read checkpoints of earlier layouts: the object branch's parts at
        the top level (``roi_neck.``, ``roi_queue`` ...; the momentum RoI
        neck was ``encoder_k.module.3.``), the queues as two buffers each,
        and the former ``HeatmapCCOP``'s ``step`` buffer (the warm-up now
        reads the message hub): dropped."""
        state_dict.pop(prefix + 'step', None)
        for old, new in LEGACY_BRANCH_PREFIXES:
            for k in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict.setdefault(prefix + new + k[len(prefix + old):],
                                      state_dict.pop(k))
        steps = prefix + 'encoder_k.steps'
        branch_steps = prefix + 'object_branch.encoder_k.steps'
        if steps in state_dict and branch_steps not in state_dict:
            state_dict[branch_steps] = state_dict[steps].clone()
        remap_queue_keys(state_dict, {
            prefix + 'queue': prefix + 'queue',
            prefix + 'roi_queue': prefix + 'object_branch.roi_queue'
        })
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def _get_boxes(data_samples: List[DataSample], num_imgs: int,
                   device: torch.device) -> Tuple[List[torch.Tensor], ...]:
        """Per-image boxes of view 0 and view 1 from ``view_bboxes``."""
        view_boxes = get_view_bboxes(data_samples, num_imgs, 2, device)
        return [vb[0] for vb in view_boxes], [vb[1] for vb in view_boxes]

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The forward function in training.

        Args:
            inputs (List[torch.Tensor]): Two views, each ``(B, 3, H, W)``.
            data_samples (List[DataSample]): One per image, with
                ``view_bboxes`` ``(2, N_b, 4)`` ``xyxy`` in view pixels, row
                ``i`` the same proposal in both views.

        Returns:
            Dict[str, torch.Tensor]: ``loss_img``, and ``loss_roi`` and
            ``loss_intra`` where their heads are set.
        """
        assert isinstance(inputs, list) and len(inputs) >= 2, \
            'CCOP needs a list of two views'
        im_q, im_k = inputs[0], inputs[1]
        boxes_q, boxes_k = self._get_boxes(data_samples, im_q.shape[0],
                                           im_q.device)

        # momentum encoder first, so that its features can also supply the
        # boxes (``box_source``) without a second key pass; the query side
        # does not depend on it. One key pass for both branches.
        with torch.no_grad():
            img_k, fpn_k, c5_k = self._encode_key(im_k)
            if self.box_source is not None:
                with record_function('ccop:key_boxes'):
                    boxes_q, boxes_k = self.box_source(
                        c5_k, im_k.shape[-2:], data_samples, boxes_q,
                        boxes_k)

        # image branch (MoCo v2)
        with record_function('ccop:encoder_q'):
            feats_q = self.backbone(im_q)
            img_q = F.normalize(self.img_neck((feats_q[-1], ))[0], dim=1)
        loss_img = self.head.loss(*self.queue.logits(img_q, img_k))

        # object branch on the FPN maps of both views
        with record_function('ccop:fpn_q'):
            fpn_q = self.neck(feats_q)
        branch, roi_k = self.object_branch.pair_losses(
            fpn_q, lambda: fpn_k, boxes_q, boxes_k, im_k.shape[-2:])

        self.queue.enqueue(img_k)
        losses = dict(loss_img=loss_img * self.img_loss_weight)
        losses.update(self.object_branch.finish([branch], [roi_k]))
        return losses

    @torch.no_grad()
    def _encode_key(self, im_k: torch.Tensor
                    ) -> Tuple[torch.Tensor, List[torch.Tensor],
                               torch.Tensor]:
        """EMA update (both branches), then the key view through the
        momentum encoder.

        The images are batch-shuffled across ranks (BN, as MoCo) and every
        output is unshuffled.

        Returns:
            tuple: normalised image keys ``(B, C)``, the FPN levels and the
            last backbone stage ``(B, C5, h, w)`` (None without a
            ``box_source``), in the original order.
        """
        with record_function('ccop:encoder_k'):
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.img_neck))
            self.object_branch.update_key_encoder()
            backbone_k, neck_k, img_neck_k = self.encoder_k.module
            im_k_shuffled, idx_unshuffle = batch_shuffle_ddp(im_k)
            feats_k = backbone_k(im_k_shuffled)
            fpn_k = neck_k(feats_k)
            img_k = F.normalize(img_neck_k((feats_k[-1], ))[0], dim=1)
            img_k = batch_unshuffle_ddp(img_k, idx_unshuffle)
            fpn_k = [batch_unshuffle_ddp(f, idx_unshuffle) for f in fpn_k]
        c5_k = None
        if self.box_source is not None:
            c5_k = batch_unshuffle_ddp(feats_k[-1], idx_unshuffle)
        return img_k, fpn_k, c5_k
