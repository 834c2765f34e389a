"""CurriculumHook: schedules, per-iteration values, logging, resume."""
import copy
from types import SimpleNamespace

import pytest
import torch
from ccop_fixtures import fake_batch, tiny_ccop_cfg
from mmengine.logging import MessageHub
from mmpretrain.registry import HOOKS, MODELS

import ccop_plugin  # noqa: F401


def _fake_runner(model, cur_iter, max_iters=100):
    return SimpleNamespace(
        model=model, iter=cur_iter, max_iters=max_iters,
        message_hub=MessageHub.get_instance('test_curriculum_hook'))


class _Holder(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.curriculum = MODELS.build(dict(type='BoxJitterCurriculum'))


@pytest.mark.parametrize('schedule,t,factor', [
    ('linear', 0.25, 0.25), ('linear', 2.0, 1.0), ('cosine', 0.5, 0.5),
    ('cosine', 0.25, 0.5 * (1 - 2**-0.5)), ('step', 0.49, 0.0),
    ('step', 0.5, 1.0)
])
def test_schedule_factor(schedule, t, factor):
    hook = HOOKS.build(dict(type='CurriculumHook', schedule=schedule))
    assert hook.factor(int(t * 1000), 1000) == pytest.approx(factor)


def test_hook_leaves_a_model_without_curriculum_alone():
    """``curriculum=None`` (an ablation) under a config that inherits the
    hook: nothing to schedule, nothing saved."""
    model = _Holder()
    model.curriculum = None
    hook = HOOKS.build(dict(type='CurriculumHook'))
    runner = _fake_runner(model, 5)
    hook.before_train(runner)
    hook.before_train_iter(runner, 0)
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt == {}


def test_hook_sets_and_logs_values_linear():
    model = _Holder()
    hook = HOOKS.build(dict(type='CurriculumHook'))
    runner = _fake_runner(model, 0)
    hook.before_train(runner)
    assert model.curriculum.get_values() == pytest.approx(
        dict(iou_thr=0.8, mag_xy=0.15, mag_wh=0.35))
    runner.iter = 50
    hook.before_train_iter(runner, 50)
    assert model.curriculum.get_values() == pytest.approx(
        dict(iou_thr=0.6, mag_xy=0.375, mag_wh=0.875))
    scalar = runner.message_hub.get_scalar('train/curriculum_iou_thr')
    assert scalar.current() == pytest.approx(0.6)
    runner.iter = 100
    hook.before_train_iter(runner, 100)
    assert model.curriculum.get_values() == pytest.approx(
        dict(iou_thr=0.4, mag_xy=0.6, mag_wh=1.4))


def test_hook_unwraps_wrapper_and_overrides():
    wrapped = torch.nn.DataParallel(_Holder())  # a registered wrapper
    hook = HOOKS.build(
        dict(type='CurriculumHook', total_iters=10, iou_thr=(0.9, 0.5)))
    runner = _fake_runner(wrapped, 5, max_iters=1000)
    hook.before_train_iter(runner, 5)
    values = wrapped.module.curriculum.get_values()
    assert values['iou_thr'] == pytest.approx(0.7)


def test_hook_checkpoint_roundtrip():
    model = _Holder()
    hook = HOOKS.build(dict(type='CurriculumHook'))
    runner = _fake_runner(model, 30)
    hook.before_train_iter(runner, 30)
    ckpt = {}
    hook.before_save_checkpoint(runner, ckpt)
    assert ckpt['curriculum']['iter'] == 30
    assert ckpt['curriculum']['values'] == pytest.approx(
        model.curriculum.get_values())
    # the values are model buffers: the state dict restores them, and on
    # resume before_train recomputes the same ones from runner.iter
    model2 = _Holder()
    model2.load_state_dict(model.state_dict())
    assert model2.curriculum.get_values() == pytest.approx(
        model.curriculum.get_values())
    model3 = _Holder()
    HOOKS.build(dict(type='CurriculumHook')).before_train(
        _fake_runner(model3, 30))
    assert model3.curriculum.get_values() == pytest.approx(
        model.curriculum.get_values())


class _FakeBoxDataset(torch.utils.data.Dataset):
    """Packed samples as PackBoxSelfSupInputs produces them."""

    def __init__(self, n=8, size=64):
        self.items = []
        for i in range(n):
            inputs, samples = fake_batch((2 + i % 3, ), size=size, seed=i)
            views = [((v[0] - v[0].min()) * 30).clamp(0, 255).to(torch.uint8)
                     for v in inputs]
            self.items.append(dict(inputs=views, data_samples=samples[0]))
        self.metainfo = {}

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        return copy.deepcopy(self.items[idx])


def _runner(work_dir, max_iters, resume=False, load_from=None):
    from mmengine.runner import Runner

    from ccop_plugin.testing import narrow_resnet18
    return Runner(
        model=narrow_resnet18(tiny_ccop_cfg()),  # 21 MB written, not 274
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_FakeBoxDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                           weight_decay=1e-4)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='CurriculumHook', total_iters=4)],
        default_scope='mmpretrain',
        randomness=dict(seed=0),
        resume=resume,
        load_from=load_from,
        experiment_name=f'ccop_{max_iters}_{int(resume)}')


@pytest.mark.slow
def test_runner_train_and_resume(tmp_path):
    runner = _runner(tmp_path, max_iters=2)
    runner.train()
    model = runner.model
    ckpt = torch.load(tmp_path / 'iter_2.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['curriculum']['iter'] == 1  # values of iteration 1
    sd = ckpt['state_dict']
    roi_queue = model.object_branch.roi_queue
    assert int(sd['object_branch.roi_queue.ptr']) == int(roi_queue.ptr) > 0
    assert int(sd['queue.ptr']) == 4
    # the last iteration ran with iter=1 of 4: factor 0.25
    assert sd['object_branch.curriculum.current'][0].item() == pytest.approx(
        0.7)

    runner2 = _runner(tmp_path, max_iters=4, resume=True,
                      load_from=str(tmp_path / 'iter_2.pth'))
    runner2.load_or_resume()
    assert runner2.iter == 2
    m2 = runner2.model
    assert torch.equal(m2.object_branch.roi_queue.keys, roi_queue.keys)
    assert torch.equal(m2.queue.keys, model.queue.keys)
    assert int(m2.object_branch.roi_queue.ptr) == int(roi_queue.ptr)
    assert m2.curriculum.get_values()['iou_thr'] == pytest.approx(0.7)
    runner2.train()
    assert runner2.iter == 4
    assert m2.curriculum.get_values()['iou_thr'] == pytest.approx(
        0.8 - 0.4 * 3 / 4)
