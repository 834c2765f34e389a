"""CCOP's object-level branch for any mmpretrain self-supervised algorithm.

Config only: ``type='WithObjectBranch'`` turns the algorithm named by
``algorithm`` (mmpretrain's ``MoCo``, ``DenseCL``, ``BYOL``, ...) into the
same algorithm plus an :class:`ObjectBranch`; every other key of the model
dict is the algorithm's own, so a config that inherits the algorithm's
config only adds three keys (``docs/mixing.md``)::

    model = dict(type='WithObjectBranch', algorithm='MoCo',
                 object_branch=dict(type='ObjectBranch', ...))

The built model *is* the algorithm (a subclass created once per algorithm,
``MoCoWithObjectBranch``): its loss, parameter names (``backbone.``,
``neck.``, ``encoder_k.`` ...) and checkpoints are the algorithm's, with the
branch's parameters under ``object_branch.``. The losses are the algorithm's
plus ``loss_roi`` and ``loss_intra``.

How the branch gets its features, without changing the algorithm's code:

* Query side: forward hooks on the online backbone's stages (``in_layers``,
  e.g. ResNet's ``layer1``-``layer4``) record their outputs whenever the
  algorithm runs the backbone on one of the input views (recognised by
  identity: ``self.backbone(inputs[v])``). Gradients flow from the branch's
  losses into the backbone through these tensors; the algorithm's own neck
  still sees only what the backbone returns (``out_indices``), so
  ``MoCoV2Neck`` or ``DenseCLNeck`` are unchanged.
* Key side: the algorithm's momentum backbone (``encoder_k.module[0]`` for
  MoCo / DenseCL, ``target_net.module[0]`` for BYOL). If the algorithm ran
  it on the key view unshuffled (BYOL), the recorded stage outputs are
  reused; MoCo and DenseCL run it on a batch-shuffled view, so the branch
  runs it once more on the key view, with its own batch shuffle (one extra
  no-grad backbone pass per step).
* Every view the algorithm ran the online backbone on becomes a query view,
  the other view its key view: MoCo v2 and DenseCL give one direction
  (view 0 -> view 1), BYOL both (the two losses are averaged).

The branch itself reuses CCOP's parts: an optional ``neck`` (e.g.
``mmdet.FPN`` over the stage outputs), :class:`ObjectRoINeck`,
:class:`ObjectContrastiveHead` with its own RoI queue, optionally
:class:`IntraObjectDiscriminationHead` and the :class:`BoxJitterCurriculum`
(driven by ``CurriculumHook``, which finds it as ``model.curriculum``), and a
momentum copy of its neck and RoI neck. The boxes are the ``view_bboxes`` of
``PackBoxSelfSupInputs`` (the proposal pipeline,
``configs/_base_/datasets/proposal_pipeline.py``).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.models.utils import batch_shuffle_ddp, batch_unshuffle_ddp
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..utils.contrastive import queue_logits
from ..utils.dist_utils import all_gather_variable, enqueue_keys
from ..utils.fused_ema import FusedExponentialMovingAverage
from ..utils.rois import boxes_to_rois
from ..utils.view_geometry import get_view_bboxes

#: Attributes of mmpretrain algorithms holding the momentum
#: ``Sequential(backbone, neck)``, tried in this order.
KEY_ENCODER_ATTRS = ('encoder_k', 'target_net', 'momentum_encoder')


class _StageTap:
    """Forward hooks recording a backbone's stage outputs while armed.

    Each call of the backbone while armed adds ``(input, [stage outputs])``
    to :attr:`calls`.
    """

    def __init__(self, backbone: nn.Module, layers: Sequence[str]):
        self.layers = tuple(layers)
        self.armed = False
        self.calls: List[Tuple[torch.Tensor, List]] = []
        names = dict(backbone.named_modules())
        missing = [n for n in self.layers if n not in names]
        if missing:
            raise KeyError(
                f'ObjectBranch: backbone {type(backbone).__name__} has no '
                f'sub-module {missing} (in_layers); it has e.g. '
                f'{[n for n, _ in backbone.named_children()]}')
        backbone.register_forward_pre_hook(self._pre)
        for i, n in enumerate(self.layers):
            names[n].register_forward_hook(self._post_hook(i))

    def _pre(self, module, args):
        if self.armed and args:
            self.calls.append((args[0], [None] * len(self.layers)))

    def _post_hook(self, i: int):

        def hook(module, args, out):
            if self.armed and self.calls:
                self.calls[-1][1][i] = out

        return hook

    def take(self) -> List[Tuple[torch.Tensor, List]]:
        calls, self.calls, self.armed = self.calls, [], False
        return calls


def _view_index(x: torch.Tensor, views: Sequence[torch.Tensor]) -> int:
    for v, view in enumerate(views):
        if x is view:
            return v
    return -1


@MODELS.register_module()
class ObjectBranch(BaseModule):
    """CCOP's object branch, attachable to any self-supervised algorithm.

    Build it through ``WithObjectBranch`` (module docstring); alone it has no
    backbone.

    Args:
        roi_neck (dict): ``ObjectRoINeck`` over the (neck's) feature maps.
        roi_head (dict): ``ObjectContrastiveHead``.
        in_layers (Sequence[str]): Backbone sub-modules whose outputs feed
            the branch, finest first. Defaults to ResNet's four stages.
        neck (dict, optional): Neck over the stage outputs (e.g.
            ``mmdet.FPN``); None feeds the stage outputs to the RoI neck.
        intra_head (dict, optional): ``IntraObjectDiscriminationHead``;
            None leaves the intra-image loss out.
        curriculum (dict, optional): ``BoxJitterCurriculum``; None uses the
            key box itself as the positive (no spatial noise).
        roi_queue_len (int): RoI queue length. Defaults to 65536.
        feat_dim (int): Embedding dimension. Defaults to 128.
        momentum (float): EMA momentum of the branch's key neck and RoI neck
            (mmengine convention: 0.001 == 0.999). Defaults to 0.001.
        roi_loss_weight (float): Defaults to 1.
        intra_loss_weight (float): Defaults to 1.
        key_encoder (str, optional): Attribute of the algorithm holding its
            momentum ``Sequential(backbone, neck)``; None tries
            :data:`KEY_ENCODER_ATTRS`.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 roi_neck: dict,
                 roi_head: dict,
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
        self.roi_head = MODELS.build(roi_head)
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
        self.register_buffer(
            'roi_queue',
            F.normalize(torch.randn(feat_dim, roi_queue_len), dim=0))
        self.register_buffer('roi_queue_ptr', torch.zeros(1,
                                                          dtype=torch.long))
        # set by attach(); plain attributes, not sub-modules
        self._online_tap: Optional[_StageTap] = None
        self._key_tap: Optional[_StageTap] = None
        self._key_backbone: List[nn.Module] = []

    def _key_modules(self) -> nn.Sequential:
        parts = [self.neck] if self.neck is not None else []
        return nn.Sequential(*parts, self.roi_neck)

    def attach(self, algorithm: BaseSelfSupervisor) -> None:
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
        self._online_tap = _StageTap(algorithm.backbone, self.in_layers)
        self._key_tap = _StageTap(key_backbone, self.in_layers)
        self._key_backbone = [key_backbone]

    def arm(self) -> None:
        """Record the backbones' stage outputs until :meth:`loss`."""
        self._online_tap.calls, self._key_tap.calls = [], []
        self._online_tap.armed = self._key_tap.armed = True

    def _key_features(self, view: torch.Tensor,
                      recorded: List[Tuple[torch.Tensor, List]]) -> List:
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

    def _embed_keys(self, fpn_k: List[torch.Tensor],
                    boxes_k: List[torch.Tensor], rois_k: torch.Tensor,
                    roi_q: torch.Tensor, img_shape: Tuple[int, int],
                    roi_neck_k: nn.Module) -> Tuple[torch.Tensor, ...]:
        """Positive and original key embeddings (the curriculum, as CCOP)."""
        if self.curriculum is None:
            emb = F.normalize(roi_neck_k(fpn_k, rois_k), dim=1)
            return emb, emb
        return self.curriculum.positive_keys(
            boxes_k, img_shape, roi_q,
            lambda rois: F.normalize(roi_neck_k(fpn_k, rois), dim=1))

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Object-level losses of the views recorded since :meth:`arm`."""
        online = self._online_tap.take()
        recorded_k = self._key_tap.take()
        pairs = []
        for x, feats in online:
            q = _view_index(x, inputs[:2])
            if q >= 0 and all(f is not None for f in feats):
                pairs.append((q, 1 - q, feats))
        if not pairs:
            raise RuntimeError(
                'ObjectBranch: the algorithm did not run its backbone on an '
                'input view (self.backbone(inputs[v])), so there are no '
                'query features; this algorithm cannot take the branch')
        view_boxes = get_view_bboxes(data_samples, inputs[0].shape[0], 2,
                                     inputs[0].device)
        with torch.no_grad():
            self.encoder_k.update_parameters(self._key_modules())
        key_mods = list(self.encoder_k.module)
        neck_k, roi_neck_k = (key_mods[0] if self.neck is not None else
                              None), key_mods[-1]

        loss_roi, loss_intra, keys = 0., 0., []
        for q, k, feats_q in pairs:
            rois_q = boxes_to_rois([vb[q] for vb in view_boxes]).to(
                inputs[q].device)
            boxes_k = [vb[k] for vb in view_boxes]
            rois_k = boxes_to_rois(boxes_k).to(inputs[q].device)
            fpn_q = self.neck(feats_q) if self.neck is not None else feats_q
            roi_q = F.normalize(self.roi_neck(fpn_q, rois_q), dim=1)
            with torch.no_grad():
                feats_k = self._key_features(inputs[k], recorded_k)
                fpn_k = neck_k(feats_k) if neck_k is not None else feats_k
                roi_k_pos, roi_k_ori = self._embed_keys(
                    fpn_k, boxes_k, rois_k, roi_q, inputs[k].shape[-2:],
                    roi_neck_k)
            loss_roi = loss_roi + self.roi_head.loss(
                *queue_logits(roi_q, roi_k_pos, self.roi_queue))
            if self.intra_head is not None:
                loss_intra = loss_intra + self.intra_head.loss(
                    roi_q, roi_k_ori, rois_k[:, 1:], rois_k[:, 0].long())
            keys.append(roi_k_pos)
        with torch.no_grad():
            enqueue_keys(self.roi_queue, self.roi_queue_ptr,
                         all_gather_variable(torch.cat(keys)))
        losses = dict(loss_roi=loss_roi / len(pairs) * self.roi_loss_weight)
        if self.intra_head is not None:
            losses['loss_intra'] = (
                loss_intra / len(pairs) * self.intra_loss_weight)
        return losses


class ObjectBranchMixin:
    """Adds :class:`ObjectBranch` to a self-supervised algorithm class."""

    def __init__(self, *args, object_branch: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.object_branch = MODELS.build(object_branch)
        self.object_branch.attach(self)

    @property
    def curriculum(self):
        """The branch's curriculum (what ``CurriculumHook`` drives)."""
        return self.object_branch.curriculum

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        assert isinstance(inputs, list) and len(inputs) >= 2, \
            'the object branch needs a list of two views'
        self.object_branch.arm()
        try:
            losses = super().loss(inputs, data_samples, **kwargs)
        except BaseException:
            self.object_branch._online_tap.take()
            self.object_branch._key_tap.take()
            raise
        branch = self.object_branch.loss(inputs, data_samples)
        clash = set(branch) & set(losses)
        if clash:
            raise KeyError(f'{type(self).__name__}: the algorithm already '
                           f'returns {sorted(clash)}')
        losses.update(branch)
        return losses


_CLASSES: Dict[type, type] = {}


def object_branch_class(base: type) -> type:
    """``<Base>WithObjectBranch``, created once per algorithm class."""
    if base not in _CLASSES:
        if not (isinstance(base, type)
                and issubclass(base, BaseSelfSupervisor)):
            raise TypeError(f'WithObjectBranch: {base!r} is not an mmpretrain '
                            'self-supervised algorithm (BaseSelfSupervisor)')
        _CLASSES[base] = type(
            f'{base.__name__}WithObjectBranch', (ObjectBranchMixin, base),
            dict(__module__=__name__,
                 __doc__=f'{base.__name__} with CCOP\'s object branch.'))
    return _CLASSES[base]


@MODELS.register_module(name='WithObjectBranch')
def with_object_branch(algorithm: str, object_branch: dict,
                       **kwargs) -> BaseSelfSupervisor:
    """Build ``algorithm`` (a registered name, e.g. ``'MoCo'``) with an
    :class:`ObjectBranch`; ``kwargs`` are the algorithm's own arguments."""
    base = MODELS.get(algorithm) if isinstance(algorithm, str) else algorithm
    if base is None:
        raise KeyError(f'WithObjectBranch: no algorithm {algorithm!r} in '
                       'the mmpretrain registry')
    return object_branch_class(base)(object_branch=object_branch, **kwargs)
