"""MCL: cosine EMA schedule (0.99 -> 1) and per-level augmented views."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401
from ccop_plugin.models.necks import MCLProjector

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..',
                'configs')
TINY = 'mcl/mcl_resnet18-fpn_cpu-tiny.py'


def _model(**overrides):
    cfg = Config.fromfile(osp.join(ROOT, TINY))
    cfg.model.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg.model.to_dict()).train()


def _online(model):
    return dict(torch.nn.Sequential(model.backbone, model.neck,
                                    model.projector).named_parameters())


@pytest.fixture
def max_iters():
    hub = MessageHub.get_current_instance()
    old = hub.get_info('max_iters')
    yield lambda k: hub.update_info('max_iters', k)
    hub.update_info('max_iters', old)


def test_cosine_momentum_schedule(max_iters):
    """After update k the key params are (1-m_k) k + m_k q, with
    m_k = 0.01 * (cos(pi k / K) + 1) / 2 (EMA 0.99 -> 1)."""
    K = 6
    max_iters(K)
    model = _model()
    assert model.encoder_k.momentum == pytest.approx(0.01)
    assert model.encoder_k.end_momentum == 0.
    online = torch.nn.Sequential(model.backbone, model.neck,
                                 model.projector)
    name = 'module.0.conv1.weight'
    for k in range(K + 1):
        key_before = model.encoder_k.state_dict()[name].clone()
        with torch.no_grad():  # stands in for an optimizer step
            for p in _online(model).values():
                p.add_(torch.randn_like(p) * 0.1)
        q = _online(model)['0.conv1.weight'].detach().clone()
        steps = int(model.encoder_k.steps)
        # what MCL.loss does first (loss itself: see the test below)
        model.encoder_k.update_parameters(online)
        key_after = model.encoder_k.state_dict()[name]
        if steps == 0:  # first call copies the online encoder
            assert torch.equal(key_after, q)
            continue
        m = 0.01 * (math.cos(math.pi * steps / K) + 1) / 2
        assert torch.allclose(key_after, (1 - m) * key_before + m * q,
                              atol=1e-6), (k, m)
    # at the end of training the momentum is 0: the key encoder is frozen
    assert steps == K and m == pytest.approx(0., abs=1e-12)
    assert torch.allclose(key_after, key_before, atol=1e-7)


@pytest.mark.slow
def test_runner_advances_momentum(tiny_runner):
    """In the runner, max_iters reaches CosineEMA (RuntimeInfoHook) and the
    EMA steps once per iteration (32-px views, batch 2: fast)."""

    def small(cfg):
        cfg.train_dataloader.dataset.pipeline[1]['transforms'][0][0][
            'scale'] = 32
        cfg.train_dataloader.batch_size = 2

    torch.manual_seed(0)
    runner = tiny_runner(TINY, iters=2, num_imgs=2, edit=small)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner.train()
    assert runner.message_hub.get_info('max_iters') == 2
    assert int(runner.model.encoder_k.steps) == 2
    for k in ('train/loss_l0', 'train/loss_l3'):
        assert k in runner.message_hub.log_scalars


def test_views_per_level():
    model = _model()
    L, B, S = 4, 4, 64
    views = [torch.full((B, 3, S, S), float(v)) for v in range(2 * L)]
    side_a, side_b = model._split_views(views)
    assert side_a == views[:L] and side_b == views[L:]
    canvas, counts, srcs = model._pyramid(side_a)
    assert counts == [B, 1, 1, 1]  # tiny batch: at least one canvas
    start = 0
    for lvl, n in enumerate(counts):
        assert canvas[start:start + n].eq(lvl).all()  # level l <- view l
        assert srcs[lvl].numel() == n * model.grids[lvl] ** 2
        start += n
    assert srcs[0].tolist() == list(range(B))
    # two views: every level of a side uses that side's view
    two_a, two_b = model._split_views(views[:2])
    assert all(v is views[0] for v in two_a)
    assert all(v is views[1] for v in two_b)
    with pytest.raises(ValueError, match='views'):
        model._split_views(views[:3])


def test_keys_from_plain_views_and_losses(max_iters):
    model = _model()
    B = 4
    views = [torch.randn(B, 3, 32, 32) for _ in range(8)]
    seen = []
    orig = model._embed_keys

    def spy(canvas, num):
        seen.append(canvas[:num].clone())
        return orig(canvas, num)

    model._embed_keys = spy
    assert int(model.encoder_k.steps) == 0
    losses = model.loss(views, None)
    assert int(model.encoder_k.steps) == 1  # loss() advances the EMA
    max_iters(None)  # outside a runner: a clear error, not a TypeError
    with pytest.raises(RuntimeError, match='max_iters'):
        model.loss(views, None)
    max_iters(10)
    assert torch.equal(seen[0], views[0]) and torch.equal(seen[1], views[4])
    total = sum(losses.values())
    total.backward()
    for lvl, w in enumerate(model.head.level_weights):
        # cosine logits, T = 1, 4 keys: each direction is 2 * w * CE with
        # CE close to log 4 for an untrained model; both directions summed
        per = losses[f'loss_l{lvl}'].item() / (4 * w)
        assert abs(per - math.log(B)) < 0.6, (lvl, per)
        assert model.head.predictors[lvl][0].weight.grad.abs().sum() > 0


def test_canvas_counts_released_batch_sizes():
    model = _model()
    B = 64
    views = [torch.rand(B, 3, 8, 8)] * 4
    _, counts, srcs = model._pyramid(views)
    assert counts == [64, 16, 4, 2]  # B, B/4, B/16, B/32
    # 8x8 level: 2 canvases x 64 cells, every image exactly twice
    assert torch.bincount(srcs[3], minlength=B).eq(2).all()
    assert torch.bincount(srcs[1], minlength=B).eq(1).all()


def test_projector_cells_do_not_mix():
    proj = MCLProjector(8, 16, 8, num_convs=2).eval()
    x = torch.randn(1, 8, 8, 8)
    y = x.clone()
    y[..., :4, :4] += 5.  # change cell 0 of a 2x2 grid only
    with torch.no_grad():
        ex, ey = proj(x, 2), proj(y, 2)
    assert ex.shape == (4, 8)
    assert not torch.allclose(ex[0], ey[0])
    assert torch.allclose(ex[1:], ey[1:], atol=1e-6)


def test_full_config_matches_release():
    """configs/selfsup/MCL/MCL.py of GuoQiushan/MCL: 8 views (4 x BYOL
    pipeline 1, 4 x pipeline 2), T 1.0, LARS lr 16 at 4096, wd 1e-5,
    100 epochs, EMA 0.99 -> 1."""
    import numpy as np
    from mmpretrain.registry import TRANSFORMS
    cfg = Config.fromfile(osp.join(
        ROOT, 'mcl/mcl_resnet50-fpn_lars-coslr-100e_in1k.py'))
    m = cfg.model
    assert (m.head.temperature, m.momentum, m.end_momentum) == (1.0, 0.01,
                                                                0.)
    assert m.head.level_weights == (0.5, 0.25, 0.125, 0.125)
    assert tuple(m.canvas_ratios) == (1., 1 / 4, 1 / 16, 1 / 32)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('LARS', 16., 1e-5)
    assert cfg.auto_scale_lr.base_batch_size == 4096
    assert cfg.train_cfg.max_epochs == 100
    mv = cfg.train_pipeline[1]
    assert mv.num_views == [4, 4]
    p1, p2 = mv.transforms
    assert [t['prob'] for t in p1[-2:]] == [1., 0.]  # blur, solarize
    assert [t['prob'] for t in p2[-2:]] == [0.1, 0.2]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        views = TRANSFORMS.build(mv.to_dict())(dict(
            img=np.random.randint(0, 255, (96, 80, 3), np.uint8)))['img']
    assert len(views) == 8 and all(v.shape == (224, 224, 3) for v in views)


def test_loads_checkpoints_with_predictors_in_the_algorithm():
    """State dicts written before MCLHead (``predictors.*``) load strictly;
    the neck and head keep the released init."""
    from mmengine.runner.checkpoint import load_state_dict
    model = _model()
    new = model.state_dict()
    old = {(k[len('head.'):] if k.startswith('head.predictors.') else k): v
           for k, v in new.items()}
    assert 'predictors.0.0.weight' in old
    other = _model()
    other.load_state_dict(dict(old), strict=True)
    load_state_dict(other, dict(old), strict=True)  # mmengine's loader
    for k, v in new.items():
        assert torch.equal(other.state_dict()[k], v), k
    # released init: predictor Linear N(0, 0.01), zero bias; projector
    # MLP Kaiming fan-in, zero bias
    w = model.head.predictors[0][0].weight
    assert 0.005 < w.std().item() < 0.015 and model.head.predictors[0][
        0].bias.abs().sum() == 0
    lin = model.projector.mlp[0]
    assert lin.weight.std().item() == pytest.approx(
        math.sqrt(2 / lin.in_features), rel=0.2)


def test_mcl_levels_and_gradients():
    model = _model()
    imgs = [torch.randn(4, 3, 64, 64) for _ in range(2)]
    losses = model.loss(imgs, None)
    assert set(losses) == {'loss_l0', 'loss_l1', 'loss_l2', 'loss_l3'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for p in model.head.predictors:
        assert p[0].weight.grad.abs().sum() > 0
    # level weights: an untrained model is near-uniform over 4 keys; each
    # direction is 2 * T * w * CE (T = 1, released), both summed
    for k, w in zip(sorted(losses), model.head.level_weights):
        assert 4 * w * 0.34 < losses[k].item() < 4 * w * 3.1
