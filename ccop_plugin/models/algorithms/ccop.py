"""CCOP: object-level self-supervised pre-training for detection.

Recipe (paper setting, see
``configs/ccop/ccop_resnet50-fpn_8xb32-coslr-800e_coco.py``):

* Encoders: ResNet-50 (``out_indices=(0, 1, 2, 3)``, BN) + FPN (BN, 256 ch,
  P2-P5) for the query; a momentum copy (``encoder_k``, mmengine
  ``ExponentialMovingAverage(momentum=0.001)`` == paper momentum 0.999,
  updated with multi-tensor kernels: ``FusedExponentialMovingAverage``) of
  backbone, FPN and both necks for the keys.
* Image branch (MoCo v2): pooled C5 -> ``MoCoV2Neck`` 2048-2048-128, queue of
  65536, temperature 0.2, batch shuffle of the key images for BN under DDP.
* Object branch: per image ``N_b`` selective-search boxes visible in both views
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

from ..utils.contrastive import queue_logits
from ..utils.dist_utils import all_gather_variable, enqueue_keys
from ..utils.fused_ema import FusedExponentialMovingAverage
from ..utils.rois import boxes_to_rois
from ..utils.view_geometry import get_view_bboxes


@MODELS.register_module()
class CCOP(BaseSelfSupervisor):
    """CCOP.

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
        roi_head (dict): Inter-image RoI head (``ObjectContrastiveHead``).
        intra_head (dict): Intra-image head
            (``IntraObjectDiscriminationHead``).
        curriculum (dict): ``BoxJitterCurriculum`` config. Defaults to the
            paper values.
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
                 roi_head: dict,
                 intra_head: dict,
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
        self.roi_neck = MODELS.build(roi_neck)
        self.roi_head = MODELS.build(roi_head)
        self.intra_head = MODELS.build(intra_head)
        curriculum = dict(curriculum or {})
        curriculum.setdefault('type', 'BoxJitterCurriculum')
        self.curriculum = MODELS.build(curriculum)
        self.box_source = (MODELS.build(box_source)
                           if box_source is not None else None)

        # momentum encoder: backbone, FPN, image neck, RoI neck
        self.encoder_k = FusedExponentialMovingAverage(
            nn.Sequential(self.backbone, self.neck, self.img_neck,
                          self.roi_neck), momentum)

        self.queue_len = queue_len
        self.roi_queue_len = roi_queue_len
        self.feat_dim = feat_dim
        self.img_loss_weight = img_loss_weight
        self.roi_loss_weight = roi_loss_weight
        self.intra_loss_weight = intra_loss_weight

        self.register_buffer(
            'queue', F.normalize(torch.randn(feat_dim, queue_len), dim=0))
        self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))
        self.register_buffer(
            'roi_queue',
            F.normalize(torch.randn(feat_dim, roi_queue_len), dim=0))
        self.register_buffer('roi_queue_ptr', torch.zeros(1,
                                                          dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints of ``HeatmapCCOP`` before box sources carry a
        ``step`` buffer (the warm-up now reads the message hub): dropped."""
        state_dict.pop(prefix + 'step', None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Gather image keys from all ranks and write them to the queue."""
        enqueue_keys(self.queue, self.queue_ptr, all_gather_variable(keys))

    @torch.no_grad()
    def _roi_dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Gather a variable number of RoI keys per rank into the queue."""
        enqueue_keys(self.roi_queue, self.roi_queue_ptr,
                     all_gather_variable(keys))

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
            Dict[str, torch.Tensor]: ``loss_img``, ``loss_roi``,
            ``loss_intra``.
        """
        assert isinstance(inputs, list) and len(inputs) >= 2, \
            'CCOP needs a list of two views'
        im_q, im_k = inputs[0], inputs[1]
        boxes_q, boxes_k = self._get_boxes(data_samples, im_q.shape[0],
                                           im_q.device)

        # momentum encoder first, so that its features can also supply the
        # boxes (``box_source``) without a second key pass; the query side
        # does not depend on it
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
        loss_img = self.head.loss(*queue_logits(img_q, img_k, self.queue))

        # object branch: query RoIs, curriculum positives, both RoI losses
        rois_q = boxes_to_rois(boxes_q).to(im_q.device)
        rois_k = boxes_to_rois(boxes_k).to(im_q.device)
        with record_function('ccop:fpn_q'):
            fpn_q = self.neck(feats_q)
        with record_function('ccop:object_branch'):
            roi_q = F.normalize(self.roi_neck(fpn_q, rois_q), dim=1)
        roi_k_pos, roi_k_ori = self._curriculum_keys(boxes_k, im_k.shape[-2:],
                                                     roi_q, fpn_k)
        with record_function('ccop:object_branch'):
            loss_roi = self.roi_head.loss(
                *queue_logits(roi_q, roi_k_pos, self.roi_queue))
            loss_intra = self.intra_head.loss(roi_q, roi_k_ori,
                                              rois_k[:, 1:],
                                              rois_k[:, 0].long())

        self._dequeue_and_enqueue(img_k)
        self._roi_dequeue_and_enqueue(roi_k_pos)
        return dict(
            loss_img=loss_img * self.img_loss_weight,
            loss_roi=loss_roi * self.roi_loss_weight,
            loss_intra=loss_intra * self.intra_loss_weight)

    @torch.no_grad()
    def _encode_key(self, im_k: torch.Tensor
                    ) -> Tuple[torch.Tensor, List[torch.Tensor],
                               torch.Tensor]:
        """EMA update, then the key view through the momentum encoder.

        The images are batch-shuffled across ranks (BN, as MoCo) and every
        output is unshuffled.

        Returns:
            tuple: normalised image keys ``(B, C)``, the FPN levels and the
            last backbone stage ``(B, C5, h, w)`` (None without a
            ``box_source``), in the original order.
        """
        with record_function('ccop:encoder_k'):
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck, self.img_neck,
                              self.roi_neck))
            backbone_k, neck_k, img_neck_k, _ = self.encoder_k.module
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

    @torch.no_grad()
    def _curriculum_keys(self, boxes_k: List[torch.Tensor],
                         img_shape: Tuple[int, int], roi_q: torch.Tensor,
                         fpn_k: List[torch.Tensor]
                         ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The curriculum step: the positive key of every query RoI (the
        least query-similar valid jittered key box) and the original key
        box's embedding, both from the momentum RoI neck."""
        roi_neck_k = self.encoder_k.module[3]
        with record_function('ccop:curriculum'):
            return self.curriculum.positive_keys(
                boxes_k, img_shape, roi_q,
                lambda rois: F.normalize(roi_neck_k(fpn_k, rois), dim=1))
