"""CCOP algorithm: shapes, losses, 0-box images, learning, state_dict."""
import copy

import pytest
import torch
from ccop_fixtures import IMG, fake_batch, tiny_ccop_cfg
from mmpretrain.registry import MODELS

import ccop_plugin  # noqa: F401


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = MODELS.build(tiny_ccop_cfg())
    m.train()
    return m


def test_loss_keys_finite(model):
    inputs, samples = fake_batch((3, 5))
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_img', 'loss_roi', 'loss_intra'}
    for v in losses.values():
        assert v.dim() == 0 and torch.isfinite(v)
    sum(losses.values()).backward()
    assert model.backbone.conv1.weight.grad is not None
    branch = model.object_branch
    assert branch.roi_neck.mlp[0].weight.grad.abs().sum() > 0
    # queues advanced: 2 image keys, 8 RoI keys
    assert int(model.queue.ptr) == 2
    assert int(branch.roi_queue.ptr) == 8


def test_curriculum_embeds_valid_candidates_only(model):
    """The key RoI neck sees exactly the valid candidates, and the positive
    is the least query-similar of them as if every candidate were embedded."""
    model.curriculum.set_progress(0.5)
    seen, picked = {}, {}
    jitter, select = model.curriculum.jitter, model.curriculum.select
    key_neck = model.object_branch.encoder_k.module[-1]

    def spy_jitter(*args, **kwargs):
        cands, valid = jitter(*args, **kwargs)
        seen['valid'] = valid
        return cands, valid

    def spy_select(query, cand_k, valid):
        idx = select(query, cand_k, valid)
        picked.update(query=query, cand_k=cand_k, idx=idx)
        return idx

    rows = []
    handle = key_neck.register_forward_hook(
        lambda mod, args, out: rows.append(args[1].shape[0]))
    model.curriculum.jitter, model.curriculum.select = spy_jitter, spy_select
    try:
        inputs, samples = fake_batch((3, 5))
        model(inputs, samples, mode='loss')
    finally:
        handle.remove()
    valid = seen['valid']
    assert rows == [int(valid.sum())] and not valid.all()
    sims = torch.einsum('mc,mkc->mk', picked['query'], picked['cand_k'])
    best = sims.masked_fill(~valid, 9).min(dim=1).values
    assert torch.allclose(sims[torch.arange(len(best)), picked['idx']], best)


def test_param_names_and_shapes(model):
    names = dict(model.named_parameters())
    assert 'backbone.conv1.weight' in names
    assert any(n.startswith('neck.lateral_convs') for n in names)
    sd = model.state_dict()
    assert any(k.startswith('encoder_k.module.0.') for k in sd)
    assert sd['queue.keys'].shape == (16, 32)
    assert sd['object_branch.roi_queue.keys'].shape == (16, 32)
    feats = model(torch.randn(2, 3, IMG, IMG), mode='tensor')
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512]
    fpn = model.neck(feats)
    rois = torch.tensor([[0, 0., 0., 20., 20.], [1, 5., 5., 60., 50.]])
    emb = model.object_branch.roi_neck(fpn, rois)
    assert emb.shape == (2, 16)


def test_loss_weights():
    torch.manual_seed(0)
    m = MODELS.build(
        tiny_ccop_cfg(img_loss_weight=0., roi_loss_weight=2.,
                      intra_loss_weight=0.5))
    torch.manual_seed(0)
    ref = MODELS.build(tiny_ccop_cfg())
    inputs, samples = fake_batch((3, 4))
    torch.manual_seed(1)
    a = m(inputs, samples, mode='loss')
    torch.manual_seed(1)
    b = ref(inputs, samples, mode='loss')
    assert a['loss_img'] == 0
    assert torch.allclose(a['loss_roi'], 2 * b['loss_roi'])
    assert torch.allclose(a['loss_intra'], 0.5 * b['loss_intra'])


@pytest.mark.parametrize('num_boxes', [(0, 4), (0, 0)])
def test_zero_box_images(model, num_boxes):
    inputs, samples = fake_batch(num_boxes)
    losses = model(inputs, samples, mode='loss')
    for v in losses.values():
        assert torch.isfinite(v)
    sum(losses.values()).backward()
    assert int(model.object_branch.roi_queue.ptr) == sum(num_boxes)
    if sum(num_boxes) == 0:
        assert losses['loss_roi'] == 0 and losses['loss_intra'] == 0


def test_bad_view_bboxes_raise(model):
    inputs, samples = fake_batch((2, 2))
    samples[1].view_bboxes = torch.zeros(2, 3)
    with pytest.raises(ValueError, match='view_bboxes'):
        model(inputs, samples, mode='loss')
    del samples[1].view_bboxes
    with pytest.raises(KeyError, match='PackBoxSelfSupInputs'):
        model(inputs, samples, mode='loss')


def test_sgd_steps_lower_loss():
    torch.manual_seed(0)
    model = MODELS.build(tiny_ccop_cfg(momentum=0.5))
    model.train()
    inputs, samples = fake_batch((4, 4), seed=3)
    buffers = {k: v.clone() for k, v in model.named_buffers()
               if 'queue' in k}

    def total_loss():
        # same queue and jitter every time: only the weights differ
        with torch.no_grad():
            state = copy.deepcopy(model.state_dict())
            for k, v in buffers.items():
                model.get_buffer(k).copy_(v)
            torch.manual_seed(123)
            loss = sum(model(inputs, samples, mode='loss').values())
            model.load_state_dict(state)
        return float(loss)

    optim = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    before = total_loss()
    for _ in range(3):
        losses = model(inputs, samples, mode='loss')
        optim.zero_grad()
        sum(losses.values()).backward()
        optim.step()
    after = total_loss()
    assert after < 0.9 * before, (before, after)


def test_state_dict_restores_queues_and_curriculum(model):
    inputs, samples = fake_batch((3, 2))
    model(inputs, samples, mode='loss')
    model.curriculum.set_values(iou_thr=0.55, mag_xy=0.3, mag_wh=0.9)
    state = copy.deepcopy(model.state_dict())
    torch.manual_seed(5)
    other = MODELS.build(tiny_ccop_cfg())
    roi_queue = model.object_branch.roi_queue
    assert not torch.equal(other.object_branch.roi_queue.keys, roi_queue.keys)
    other.load_state_dict(state)
    assert torch.equal(other.queue.keys, model.queue.keys)
    assert torch.equal(other.object_branch.roi_queue.keys, roi_queue.keys)
    assert int(other.object_branch.roi_queue.ptr) == 5
    assert int(other.queue.ptr) == 2
    assert other.curriculum.get_values() == pytest.approx(
        dict(iou_thr=0.55, mag_xy=0.3, mag_wh=0.9))


def test_autocast_bfloat16(model):
    inputs, samples = fake_batch((3, 2))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model(inputs, samples, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.object_branch.roi_queue.keys.dtype == torch.float32


def test_profiler_sections(model):
    from torch.profiler import ProfilerActivity, profile
    inputs, samples = fake_batch((2, 2))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model(inputs, samples, mode='loss')
    keys = {ev.key for ev in prof.key_averages()}
    assert {'ccop:encoder_q', 'ccop:fpn_q', 'ccop:encoder_k',
            'ccop:curriculum', 'ccop:object_branch'} <= keys


def test_ablations_by_config_leave_their_loss_out():
    """``intra_head=None`` / ``roi_head=None`` drop that loss (no zero
    weight); ``curriculum=None`` uses the key box itself as the positive."""
    inputs, samples = fake_batch((3, 4))
    torch.manual_seed(0)
    m = MODELS.build(tiny_ccop_cfg(intra_head=None))
    assert set(m(inputs, samples, mode='loss')) == {'loss_img', 'loss_roi'}
    torch.manual_seed(0)
    m = MODELS.build(tiny_ccop_cfg(roi_head=None))
    losses = m(inputs, samples, mode='loss')
    assert set(losses) == {'loss_img', 'loss_intra'}
    assert int(m.object_branch.roi_queue.ptr) == 0  # nothing enqueued
    sum(losses.values()).backward()
    assert m.object_branch.roi_neck.mlp[0].weight.grad.abs().sum() > 0
    torch.manual_seed(0)
    m = MODELS.build(tiny_ccop_cfg(curriculum=None))
    assert m.curriculum is None
    seen = []
    m.object_branch.encoder_k.module[-1].register_forward_hook(
        lambda mod, args, out: seen.append(args[1].shape[0]))
    m(inputs, samples, mode='loss')
    assert seen == [7]  # the key boxes only, no jittered candidates
