"""A pre-training killed after a checkpoint and resumed equals the
uninterrupted run, tensor for tensor (CPU, num_workers=0)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')


class Killed(RuntimeError):
    pass


class KillAfter(Hook):
    """Dies at the end of iteration ``n`` (after its checkpoint is written)."""

    def __init__(self, n):
        self.n = n

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.iter + 1 == self.n:
            raise Killed(f'killed after iteration {self.n}')


def _train(data_root, work_dir, resume=False, kill_after=None):
    cfg = Config.fromfile(osp.join(CONFIGS, 'ccop',
                                   'ccop_resnet18-fpn_cpu-tiny.py'))
    m = cfg.model  # a narrow ResNet-18 on 64-px views: seconds on a CPU
    m.queue_len = m.roi_queue_len = 16
    m.backbone.base_channels = m.backbone.stem_channels = 8
    m.neck.in_channels, m.neck.out_channels = [8, 16, 32, 64], 32
    m.img_neck.in_channels, m.img_neck.hid_channels = 64, 64
    m.roi_neck.in_channels, m.roi_neck.hid_channels = 32, 64
    m.roi_neck.dropout = 0.1  # dropout draws from torch's RNG too
    views = cfg.train_dataloader.dataset.pipeline[2]
    views.size, views.area_thr = 64, 12
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.dataset.data_root = str(data_root) + '/'
    cfg.train_dataloader.dataset.ann_file = 'proposals.json'
    cfg.train_dataloader.dataset.data_prefix = dict(img_path='images/')
    cfg.train_cfg.max_iters = 4
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0,
             end=4)
    ]
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=-1)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    cfg.resume = resume
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner = Runner.from_cfg(cfg)
        if kill_after:
            runner.register_hook(KillAfter(kill_after), priority='LOWEST')
        runner.train()
    return runner


def _tensors(obj, prefix=''):
    """Every tensor of a nested checkpoint entry, by path."""
    out = {}
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f'{prefix}/{k}'))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f'{prefix}/{i}'))
    return out


@pytest.mark.slow
def test_resume_is_exact(tmp_path, tiny_proposal_coco):
    data = tmp_path / 'data'
    data.mkdir()
    # 3 batches an epoch: the checkpoint at 2 is mid-epoch, the resumed
    # run crosses an epoch boundary (a new sampler order) afterwards
    tiny_proposal_coco(data, num_imgs=6, size=(80, 96), min_side=30.)
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    _train(data, full)
    with pytest.raises(Killed):
        _train(data, cut, kill_after=2)
    assert osp.isfile(cut / 'iter_2.pth') and not osp.isfile(
        cut / 'iter_4.pth')
    resumed = _train(data, cut, resume=True)
    assert resumed.iter == 4

    a = torch.load(full / 'iter_4.pth', map_location='cpu', weights_only=False)
    b = torch.load(cut / 'iter_4.pth', map_location='cpu', weights_only=False)
    for key in ('state_dict', 'optimizer', 'random_state'):
        assert key in a, key  # random_state: RandomStateHook (CCOP configs)
        ta, tb = _tensors(a[key]), _tensors(b[key])
        assert ta.keys() == tb.keys(), key
        diff = [k for k in ta if not torch.equal(ta[k], tb[k])]
        assert not diff, f'{key}: {len(diff)} tensors differ, e.g. {diff[:3]}'
    assert a['random_state']['python'] == b['random_state']['python']
    assert list(a['random_state']['modules']) == ['object_branch.curriculum']
    # plain types and tensors only: loadable without unpickling code
    torch.save(a['random_state'], tmp_path / 'rs.pth')
    torch.load(tmp_path / 'rs.pth', weights_only=True)
    # the run did move: the two checkpoints of one run differ
    mid = torch.load(full / 'iter_2.pth', map_location='cpu',
                     weights_only=False)
    assert not torch.equal(mid['state_dict']['backbone.conv1.weight'],
                           a['state_dict']['backbone.conv1.weight'])


def test_curriculum_jitter_has_its_own_saved_generator():
    from ccop_plugin.models.utils.box_jitter_curriculum import (
        BoxJitterCurriculum,
    )
    boxes = torch.tensor([[10., 10., 50., 40.], [0., 0., 64., 64.]])
    cur = BoxJitterCurriculum(n_jitter=5, seed=1)
    state = cur.get_rng_state()
    torch.manual_seed(0)
    global_before = torch.get_rng_state()
    a, _ = cur.jitter(boxes, (64, 64))
    assert torch.equal(torch.get_rng_state(), global_before)  # untouched
    b, _ = cur.jitter(boxes, (64, 64))
    assert not torch.equal(a, b)
    cur.set_rng_state(state)
    assert torch.equal(cur.jitter(boxes, (64, 64))[0], a)
    # the default seed is the run's (torch.initial_seed), read not drawn
    torch.manual_seed(7)
    c1 = BoxJitterCurriculum(n_jitter=5).jitter(boxes, (64, 64))[0]
    torch.manual_seed(7)
    c2 = BoxJitterCurriculum(n_jitter=5).jitter(boxes, (64, 64))[0]
    assert torch.equal(c1, c2)


def test_random_state_of_a_module_saved_under_its_earlier_name():
    """Checkpoints from before CCOP's curriculum moved into its object
    branch saved the jitter generator as ``curriculum``."""
    import torch.nn as nn

    from ccop_plugin.engine.hooks.random_state_hook import (
        get_random_state,
        set_random_state,
    )
    from ccop_plugin.models.utils.box_jitter_curriculum import (
        BoxJitterCurriculum,
    )
    model = nn.Module()
    model.object_branch = nn.Module()
    model.object_branch.curriculum = BoxJitterCurriculum(n_jitter=5, seed=1)
    state = get_random_state(model)
    assert list(state['modules']) == ['object_branch.curriculum']
    state['modules'] = dict(curriculum=state['modules'].pop(
        'object_branch.curriculum'))
    boxes = torch.tensor([[10., 10., 50., 40.]])
    a, _ = model.object_branch.curriculum.jitter(boxes, (64, 64))
    set_random_state(state, model)
    b, _ = model.object_branch.curriculum.jitter(boxes, (64, 64))
    assert torch.equal(a, b)
