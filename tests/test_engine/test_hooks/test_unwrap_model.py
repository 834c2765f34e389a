"""The hooks reach the algorithm through any stack of registered wrappers
(mmengine's ``MODEL_WRAPPERS``) with one helper."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmpretrain.registry import HOOKS, MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.engine.model_wrappers import unwrap_model


class _Algo(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.curriculum = MODELS.build(dict(type='BoxJitterCurriculum'))
        self.distill_head = torch.nn.Module()
        self.distill_head.teacher_temp = 0.


def _wrapped(model, depth=2):
    for _ in range(depth):
        model = torch.nn.DataParallel(model)  # registered; runs on CPU
    return model


def _runner(model, cur_iter=5):
    return SimpleNamespace(
        model=model, iter=cur_iter, max_iters=10,
        message_hub=MessageHub.get_instance('test_unwrap_model'))


def test_unwrap_model_removes_every_registered_wrapper():
    algo = _Algo()
    assert unwrap_model(algo) is algo
    assert unwrap_model(_wrapped(algo, 1)) is algo
    assert unwrap_model(_wrapped(algo, 3)) is algo
    # an object that only has a `module` attribute is no wrapper
    holder = SimpleNamespace(module=algo)
    assert unwrap_model(holder) is holder


def test_teacher_temp_hook_through_nested_wrappers():
    algo = _Algo()
    hook = HOOKS.build(dict(type='TeacherTempWarmupHook', start=0.04,
                            end=0.07, warmup_iters=10))
    hook.before_train_iter(_runner(_wrapped(algo)), 5)
    assert algo.distill_head.teacher_temp == pytest.approx(0.055)


def test_curriculum_hook_through_nested_wrappers():
    algo = _Algo()
    hook = HOOKS.build(
        dict(type='CurriculumHook', total_iters=10, iou_thr=(0.9, 0.5)))
    hook.before_train_iter(_runner(_wrapped(algo, 3)), 5)
    assert algo.curriculum.get_values()['iou_thr'] == pytest.approx(0.7)


def test_random_state_hook_names_modules_of_the_algorithm():
    checkpoint = {}
    HOOKS.build(dict(type='RandomStateHook')).before_save_checkpoint(
        _runner(_wrapped(_Algo(), 3)), checkpoint)
    assert list(checkpoint['random_state']['modules']) == ['curriculum']
