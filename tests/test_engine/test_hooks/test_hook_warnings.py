"""Every warning path of the plugin's hooks, through mmengine's real
``print_log`` (``mm_logs``): a level the logger refuses (a string) turned a
warning into a crash of the run it warned about."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import HOOKS

import ccop_plugin  # noqa: F401
from ccop_plugin.engine.hooks import random_state_hook
from ccop_plugin.engine.hooks.random_state_hook import (
    get_random_state,
    set_random_state,
)

WARN = logging.WARNING


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def _warnings(records):
    return [m for lvl, m in records if lvl == WARN]


class _Stateful(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.state = 0

    def get_rng_state(self):
        return self.state

    def set_rng_state(self, s):
        self.state = s


def test_checkpoint_without_random_state_loads_with_a_warning(mm_logs):
    """Before: ``load_from=`` any checkpoint a user brings (no
    ``random_state``) died with ``TypeError: level must be an integer``."""
    hook = HOOKS.build(dict(type='RandomStateHook'))
    hook.after_load_checkpoint(SimpleNamespace(),
                               {'state_dict': {'w': torch.zeros(1)}})
    (msg, ) = _warnings(mm_logs)
    assert 'holds no random state' in msg
    assert hook._pending is None


@pytest.mark.parametrize('saved_ws, run_ws, rank, restored', [
    (2, 1, 0, True),  # saved by a distributed run, resumed by one process
    (1, 2, 0, True),  # rank 0 of a distributed resume
    (1, 2, 1, False),  # another rank keeps its seeded streams
])
def test_distributed_resume_warns(mm_logs, monkeypatch, saved_ws, run_ws,
                                  rank, restored):
    monkeypatch.setattr(random_state_hook, 'get_world_size', lambda: run_ws)
    monkeypatch.setattr(random_state_hook, 'get_rank', lambda: rank)
    hook = HOOKS.build(dict(type='RandomStateHook'))
    state = get_random_state()
    state['world_size'] = saved_ws
    hook.after_load_checkpoint(SimpleNamespace(), {'random_state': state})
    (msg, ) = _warnings(mm_logs)
    assert 'distributed run' in msg and 'rank 0' in msg
    assert (hook._pending is state) == restored


def test_other_cuda_device_count_warns(mm_logs, monkeypatch):
    state = get_random_state()
    state['cuda'] = [torch.get_rng_state()]  # one device when saved
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    set_random_state(state)
    (msg, ) = _warnings(mm_logs)
    assert 'CUDA random state of 1 devices' in msg and 'sees 2' in msg


def test_module_without_saved_state_warns(mm_logs):
    model = torch.nn.Sequential(_Stateful(), _Stateful())
    model[0].state = 7
    state = get_random_state(model)
    del state['modules']['1']
    model[0].state = model[1].state = 3
    set_random_state(state, model)
    assert model[0].state == 7 and model[1].state == 3
    (msg, ) = _warnings(mm_logs)
    assert "module '1' (_Stateful)" in msg


def test_proposal_stats_hook_warning(mm_logs):
    hook = HOOKS.build(dict(type='ProposalStatsHook', warn_fallback=0.5))
    runner = SimpleNamespace(
        epoch=0, iter=3, train_dataloader=SimpleNamespace(dataset=[]))
    hook.before_train_epoch(runner)
    samples = [dict(num_proposals=0, num_dropped_proposals=2,
                    proposal_fallback=True)] * 3
    hook.after_train_iter(runner, 0, dict(data_samples=samples))
    hook.after_train_epoch(runner)
    (msg, ) = _warnings(mm_logs)
    assert '3 of 3 images' in msg


def test_no_level_is_given_as_a_string():
    """The warnings above are every ``level=`` of the package; a string
    level anywhere else would crash the same way."""
    import pathlib
    import re
    root = pathlib.Path(ccop_plugin.__file__).parent
    bad = [f'{p.relative_to(root)}:{i}'
           for p in root.rglob('*.py')
           for i, line in enumerate(p.read_text().splitlines(), 1)
           if re.search(r"\blevel=['\"]", line)]
    assert not bad, bad
