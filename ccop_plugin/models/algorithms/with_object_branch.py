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
plus ``loss_roi`` and ``loss_intra``; an algorithm's single ``loss`` (MoCo,
BYOL) is returned as ``loss_<algorithm>`` (``loss_moco``), so that the
logged ``loss`` is the total that is back-propagated.

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

The branch is CCOP's object branch (``object_branch.py``): an optional
``neck`` (e.g. ``mmdet.FPN`` over the stage outputs), :class:`ObjectRoINeck`,
:class:`ObjectContrastiveHead` with its own RoI queue, optionally
:class:`IntraObjectDiscriminationHead` and the :class:`BoxJitterCurriculum`
(driven by ``CurriculumHook``, which finds it as ``model.curriculum``), and a
momentum copy of its neck and RoI neck. The boxes are the ``view_bboxes`` of
``PackBoxSelfSupInputs`` (the proposal pipeline,
``configs/_base_/datasets/proposal_pipeline.py``).
"""
from typing import Dict, List

import torch
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample


class ObjectBranchMixin:
    """Adds :class:`ObjectBranch` to a self-supervised algorithm class."""

    def __init__(self, *args, object_branch: dict, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.object_branch = MODELS.build(object_branch)
        self.object_branch.attach(self)

    @classmethod
    def _own_loss_name(cls) -> str:
        """``loss_<algorithm>``: the algorithm's own ``loss``, renamed."""
        base = next(b for b in cls.__mro__[1:]
                    if issubclass(b, BaseSelfSupervisor)
                    and not issubclass(b, ObjectBranchMixin))
        return f'loss_{base.__name__.lower()}'

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
            self.object_branch.disarm()
            raise
        if 'loss' in losses:
            # mmengine logs the sum of every ``loss*`` entry as ``loss``; an
            # entry named ``loss`` itself would overwrite that total in the
            # log with the algorithm's share only
            losses[self._own_loss_name()] = losses.pop('loss')
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
