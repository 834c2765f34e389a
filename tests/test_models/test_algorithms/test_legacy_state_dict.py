"""Checkpoints of earlier layouts load (strict) and give the same losses.

Earlier CCOP held the object branch's parts at the top level (``roi_neck.``,
``roi_head.``, ``intra_head.``, ``curriculum.``, the momentum RoI neck as
``encoder_k.module.3.``) and every queue (CCOP's two, PLRC's, the object
branch's) as two buffers ``<queue>`` and ``<queue>_ptr``. The old names are
built here from the current ones with an explicit table, independent of the
loader's own.
"""
import copy
import os.path as osp

import pytest
import torch
from ccop_fixtures import fake_batch, tiny_ccop_cfg
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils import KeyQueue

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs')

# current name prefix -> name prefix in checkpoints of the earlier layout
CCOP_OLD = (
    ('queue.keys', 'queue'),
    ('queue.ptr', 'queue_ptr'),
    ('object_branch.roi_queue.keys', 'roi_queue'),
    ('object_branch.roi_queue.ptr', 'roi_queue_ptr'),
    ('object_branch.encoder_k.module.0.', 'encoder_k.module.3.'),
    ('object_branch.encoder_k.steps', None),  # one EMA counter then
    ('object_branch.', ''),
)
BRANCH_OLD = (
    ('object_branch.roi_queue.keys', 'object_branch.roi_queue'),
    ('object_branch.roi_queue.ptr', 'object_branch.roi_queue_ptr'),
)


def _old_layout(state, table):
    out = {}
    for k, v in state.items():
        new, old = next(((n, o) for n, o in table if k.startswith(n)),
                        (k, k))
        if old is None:
            continue
        out[old + k[len(new):]] = v.clone()
    return out


def _losses(model, seed=3):
    inputs, samples = fake_batch((3, 5))
    torch.manual_seed(seed)
    with torch.no_grad():
        return {k: float(v) for k, v in model.loss(inputs, samples).items()}


def test_old_ccop_checkpoint_loads_strict_with_same_losses():
    torch.manual_seed(0)
    model = MODELS.build(tiny_ccop_cfg()).train()
    _losses(model, seed=1)  # queues, pointers and the EMA move
    old = _old_layout(model.state_dict(), CCOP_OLD)
    assert {'queue', 'queue_ptr', 'roi_queue', 'roi_queue_ptr',
            'encoder_k.module.3.mlp.0.weight', 'roi_neck.mlp.0.weight',
            'curriculum.current'} <= set(old)
    assert not any(k.startswith('object_branch.') for k in old)
    torch.manual_seed(7)
    other = MODELS.build(tiny_ccop_cfg()).train()
    other.load_state_dict(old, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    assert (other.curriculum.get_values() ==
            model.curriculum.get_values())
    # the jitter generator is saved by RandomStateHook, not in the weights
    other.curriculum.set_rng_state(model.curriculum.get_rng_state())
    assert _losses(other) == _losses(copy.deepcopy(model))


@pytest.mark.parametrize('config,table', [
    ('plrc/plrc_resnet18_cpu-tiny.py', (('queue.keys', 'queue'),
                                        ('queue.ptr', 'queue_ptr'))),
    ('mix/mocov2_resnet18_object-branch_cpu-tiny.py', BRANCH_OLD),
])
def test_old_queue_buffers_load_into_the_queue_module(config, table):
    """PLRC's queue and the object branch's (``WithObjectBranch``)."""
    cfg = Config.fromfile(osp.join(CONFIGS, config))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    queues = [m for m in model.modules() if isinstance(m, KeyQueue)]
    assert len(queues) == 1
    queues[0].ptr.fill_(3)
    old = _old_layout(model.state_dict(), table)
    assert {o for _, o in table} <= set(old)
    other = copy.deepcopy(model)
    fresh = [m for m in other.modules() if isinstance(m, KeyQueue)][0]
    fresh.keys.zero_()
    fresh.ptr.zero_()
    other.load_state_dict(old, strict=True)
    assert torch.equal(fresh.keys, queues[0].keys)
    assert int(fresh.ptr) == 3
