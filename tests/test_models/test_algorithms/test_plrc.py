"""PLRC forward/backward on synthetic batches (no data pipeline)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import ccop_plugin  # noqa: F401

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..',
                'configs')


def _model(cfg_file):
    cfg = Config.fromfile(osp.join(ROOT, cfg_file))
    torch.manual_seed(0)
    return MODELS.build(cfg.model.to_dict()).train()


def _sample(boxes, crops=None, flips=(False, False, False)):
    ds = DataSample()
    ds.set_field(torch.as_tensor(boxes, dtype=torch.float32).reshape(
        3, -1, 4), 'view_bboxes', field_type='metainfo')
    if crops is not None:
        ds.set_metainfo(dict(view_crops=crops, view_flips=list(flips)))
    return ds


CROPS = [[0, 0, 64, 64], [8, 8, 48, 48], [16, 0, 48, 64]]


def test_plrc_bad_regions_raise():
    model = _model('plrc/plrc_resnet18_cpu-tiny.py')
    imgs = [torch.randn(2, 3, 64, 64) for _ in range(3)]
    cell = [[0., 0., 32., 32.]]
    two_views = DataSample()
    two_views.set_field(torch.tensor([cell] * 2), 'view_bboxes',
                        field_type='metainfo')
    with pytest.raises(ValueError, match='view_bboxes'):
        model.loss(imgs, [_sample([cell] * 3, CROPS), two_views])
    with pytest.raises(KeyError, match='GridRegions'):
        model.loss(imgs, [_sample([cell] * 3, CROPS), DataSample()])
    with pytest.raises(ValueError, match='one data sample'):
        model.loss(imgs, [_sample([cell] * 3, CROPS)])


def test_plrc_losses_and_empty_regions():
    model = _model('plrc/plrc_resnet18_cpu-tiny.py')
    assert model.distill_points == 'dense'
    imgs = [torch.randn(2, 3, 64, 64) for _ in range(3)]
    cell = [[0., 0., 32., 32.], [32., 32., 64., 64.]]
    samples = [_sample([cell] * 3, CROPS, (False, True, True)),
               _sample(torch.zeros(3, 0, 4), CROPS)]
    losses = model.loss(imgs, samples)
    assert set(losses) == {'loss_img', 'loss_point', 'loss_distill'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.point_neck.mlp[0].weight.grad.abs().sum() > 0
    assert model.proto_head.prototypes.weight.grad.abs().sum() > 0
    center = model.distill_head.center
    assert center.abs().sum() > 0  # centre updated
    # centre over [affinities to the 16x16 key points, 256 prototypes]
    assert center.shape == (1, 16 * 16 + 256)
    # no region at all: the point loss is zero; the dense distillation does
    # not need regions
    losses = model.loss(imgs, [_sample(torch.zeros(3, 0, 4), CROPS)] * 2)
    assert losses['loss_point'] == 0 and losses['loss_distill'] > 0
    assert torch.isfinite(losses['loss_img'])
    # region points, no region: zero, centre kept
    model.distill_points = 'region'
    center = model.distill_head.center.clone()
    losses = model.loss(imgs, [_sample(torch.zeros(3, 0, 4), CROPS)] * 2)
    assert losses['loss_distill'] == 0
    assert torch.equal(model.distill_head.center, center)
    # dense without crops: a clear error
    model.distill_points = 'dense'
    with pytest.raises(KeyError, match='view_crops'):
        model.loss(imgs, [_sample([cell] * 3)] * 2)


def test_plrc_dense_points_inside_teacher_view():
    model = _model('plrc/plrc_resnet18_cpu-tiny.py')
    ds = _sample([[[0., 0., 64., 64.]]] * 3, CROPS)
    q, t = model._distill_points([ds], None, None, 2, (16, 16), (64, 64))
    # view 2 = image rows 16..64 (all columns) -> view-0 rows 16..64: the
    # 16x16 map cells (4 px) with centres at y >= 16 -> 12 of 16 rows
    assert q[0].shape == (12 * 16, 2) and (q[0][:, 1] > 16).all()
    # view-0 (x, y) -> view 2: x same, y = (y - 16) * 64 / 48
    assert torch.allclose(t[0][:, 0], q[0][:, 0])
    assert torch.allclose(t[0][:, 1], (q[0][:, 1] - 16) * 64 / 48)


def test_plrc_distillation_affinity_only_and_flips():
    model = _model('plrc/plrc_resnet18_cpu-tiny.py')
    model.distill_points = 'region'  # box-relative points (no crops)
    model.distill_head.distill_prototypes = False
    model.distill_head.center = torch.zeros(1, 16 * 16)
    imgs = [torch.randn(2, 3, 64, 64) for _ in range(3)]
    cell = [[0., 0., 32., 32.], [32., 0., 64., 32.], [0., 32., 64., 64.]]
    samples = [_sample([cell] * 3), _sample([cell[:1]] * 3)]
    samples[0].set_metainfo(dict(view_flips=[False, True, True]))
    losses = model.loss(imgs, samples)
    assert torch.isfinite(losses['loss_distill'])
    assert losses['loss_distill'] > 0
    losses['loss_distill'].backward()
    assert model.proto_head.mlp[0].weight.grad.abs().sum() > 0
    # a key map of another size is refused with a clear message
    with pytest.raises(ValueError, match='num_key_points'):
        model.loss([torch.randn(2, 3, 96, 96) for _ in range(3)], samples)


def test_plrc_distill_logits_per_image_affinities():
    head = _model('plrc/plrc_resnet18_cpu-tiny.py').distill_head
    head.affinity_scale = 0.5
    head.num_key_points = 4
    # 2 images, D = 2, 2x2 maps over 8x8 inputs (cell centres at 2 and 6)
    z = torch.zeros(2, 2, 2, 2)
    z[0, 0, 0, 0] = 1.  # image 0, cell (0, 0) -> input (2, 2): z = e_0
    z[1, 1, 1, 1] = 1.  # image 1, cell (1, 1) -> input (6, 6): z = e_1
    z_key = torch.zeros(2, 2, 2, 2)
    z_key[0, 0] = torch.tensor([[1., 2.], [3., 4.]])
    z_key[1, 1] = torch.tensor([[5., 6.], [7., 8.]])
    logits = torch.arange(2 * 3 * 4.).view(2, 3, 2, 2)
    pts = [torch.tensor([[2., 2.]]), torch.tensor([[6., 6.]])]
    out = head.logits(z, logits, z_key, pts, (8, 8))
    # row b = 0.5 * <z_b, key_b[:, j]> over the 4 key positions of its own
    # image, then the 3 prototype logits at the point
    assert out.tolist() == [[0.5, 1., 1.5, 2., 0., 4., 8.],
                            [2.5, 3., 3.5, 4., 15., 19., 23.]]
    head.distill_prototypes = False
    out = head.logits(z, logits, z_key, [pts[0], torch.zeros(0, 2)], (8, 8))
    assert out.tolist() == [[0.5, 1., 1.5, 2.]]


def test_plrc_default_weights_and_teacher_temp():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub
    from mmpretrain.registry import HOOKS
    model = _model('plrc/plrc_resnet18_cpu-tiny.py')
    assert model.point_loss_weight == pytest.approx(0.7 * 0.3)
    assert model.distill_loss_weight == pytest.approx(0.7 * 0.3)
    # outside a runner the head keeps its start value
    assert model.distill_head.teacher_temp == pytest.approx(0.04)
    cfg = Config.fromfile(osp.join(ROOT, 'plrc/plrc_resnet18_cpu-tiny.py'))
    hook = HOOKS.build(cfg.custom_hooks[0])
    runner = SimpleNamespace(
        model=model, iter=0,
        message_hub=MessageHub.get_instance('test_plrc_teacher_temp'))
    for it, temp in [(0, 0.04), (5, 0.055), (10, 0.07), (50, 0.07)]:
        runner.iter = it
        hook.before_train_iter(runner, it)
        assert model.distill_head.teacher_temp == pytest.approx(temp)
    assert HOOKS.build(dict(type='TeacherTempWarmupHook', start=0.04,
                            end=0.07)).value(0) == 0.07  # no warm-up
    cfg = Config.fromfile(osp.join(
        ROOT, 'plrc/plrc_resnet50_8xb32-coslr-100e_in1k.py'))
    assert [h.type for h in cfg.custom_hooks] == ['TeacherTempWarmupHook']
    assert cfg.custom_hooks[0].warmup_iters == 30 * 5005


def test_plrc_loads_checkpoints_of_the_algorithm_owned_centre():
    """State dicts written before the distillation head (``center`` and
    ``iter`` buffers of the algorithm) load strictly into today's PLRC."""
    from mmengine.runner.checkpoint import load_state_dict
    model = _model('plrc/plrc_resnet18_cpu-tiny.py')
    new = model.state_dict()
    old = {k: v for k, v in new.items() if k != 'distill_head.center'}
    old['center'] = torch.rand(1, 16 * 16 + 256)
    old['iter'] = torch.tensor([7])
    other = _model('plrc/plrc_resnet18_cpu-tiny.py')
    other.load_state_dict(old, strict=True)
    assert torch.equal(other.distill_head.center, old['center'])
    other = _model('plrc/plrc_resnet18_cpu-tiny.py')
    load_state_dict(other, dict(old), strict=True)  # mmengine's loader
    assert torch.equal(other.distill_head.center, old['center'])
    other.load_state_dict(new, strict=True)  # today's keys unchanged
    assert torch.equal(other.distill_head.center, new['distill_head.center'])
