"""ObjectBranch internals: features from hooks match a direct pass, the key
pass is reused when the algorithm ran it unshuffled, clear errors."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import ccop_plugin  # noqa: F401

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', '..',
                   'configs')


def _model(cfg_file, **edit):
    cfg = Config.fromfile(osp.join(CONFIGS, cfg_file))
    cfg.model.update(edit)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


def _batch(b=2, size=64, boxes=3):
    torch.manual_seed(0)
    views = [torch.randn(b, 3, size, size) for _ in range(2)]
    samples = []
    for _ in range(b):
        ds = DataSample()
        xy = torch.rand(boxes, 2) * size / 2
        box = torch.cat([xy, xy + size / 3], dim=1)
        ds.set_field(torch.stack([box, box + 2]), 'view_bboxes')
        samples.append(ds)
    return views, samples


def _direct_stages(backbone, x, layers=('layer1', 'layer2', 'layer3',
                                        'layer4')):
    out = {}
    hooks = [
        backbone.get_submodule(n).register_forward_hook(
            lambda m, a, o, n=n: out.__setitem__(n, o)) for n in layers
    ]
    backbone(x)
    for h in hooks:
        h.remove()
    return [out[n] for n in layers]


def test_moco_key_features_are_the_unshuffled_key_pass():
    model = _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py')
    branch = model.object_branch
    views, _ = _batch(b=4)
    with torch.no_grad():
        got = branch._key_features(views[1], [])
        want = _direct_stages(model.encoder_k.module[0], views[1])
    for g, w in zip(got, want):  # BN batch statistics do not see the order
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


def _count_calls(module):
    calls = []
    module.register_forward_pre_hook(lambda m, a: calls.append(a[0]))
    return calls


def test_query_from_view0_and_one_extra_key_pass_for_moco():
    model = _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py')
    views, samples = _batch()
    key_calls = _count_calls(model.encoder_k.module[0])
    losses = model.loss(views, samples)
    assert {'loss_moco', 'loss_roi', 'loss_intra'} == set(losses)
    # MoCo's own (shuffled) key pass + the branch's own pass on view 1
    assert len(key_calls) == 2
    # ... on the key view (batch-shuffled like MoCo's)
    assert torch.equal(key_calls[1].sum((1, 2, 3)).sort().values,
                       views[1].sum((1, 2, 3)).sort().values)
    losses['loss_roi'].backward()
    assert model.backbone.layer1[0].conv1.weight.grad.abs().sum() > 0
    assert model.object_branch.roi_neck.mlp[0].weight.grad is not None
    # nothing is recorded outside the loss
    model.backbone(views[0])
    assert model.object_branch._online_tap.calls == []


def test_byol_is_symmetric_and_reuses_the_target_pass():
    model = _model('mix/byol_resnet18_object-branch_cpu-tiny.py')
    views, samples = _batch()
    key_calls = _count_calls(model.target_net.module[0])
    seen = []
    orig = model.object_branch.roi_head.loss
    model.object_branch.roi_head.loss = (
        lambda *a: seen.append(a[0].shape) or orig(*a))
    losses = model.loss(views, samples)
    assert {'loss_byol', 'loss_roi', 'loss_intra'} == set(losses)
    assert len(key_calls) == 2  # BYOL's own target passes only
    assert len(seen) == 2  # view 0 -> 1 and 1 -> 0
    assert torch.isfinite(losses['loss_roi'])


def test_logged_loss_is_the_backpropagated_total():
    """mmengine logs the sum of all ``loss*`` entries as ``loss``: the
    wrapped algorithm's own single ``loss`` must not overwrite it."""
    model = _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py')
    views, samples = _batch()
    losses = model.loss(views, samples)
    total, log_vars = model.parse_losses(losses)
    assert float(log_vars['loss']) == pytest.approx(float(total))
    assert float(total) == pytest.approx(
        sum(float(v) for v in losses.values()))
    assert float(log_vars['loss']) > float(log_vars['loss_moco'])


def test_errors_are_clear():
    with pytest.raises(KeyError, match='no algorithm'):
        _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py',
               algorithm='NoSuchAlgo')
    with pytest.raises(KeyError, match='layer9'):
        _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py',
               object_branch=dict(in_layers=('layer9', )))
    model = _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py')
    views, samples = _batch()
    model.object_branch.arm()
    with pytest.raises(RuntimeError, match='did not run its backbone'):
        model.object_branch.loss(views, samples)


def test_mix_checkpoint_converts_for_mmdet():
    from ccop_plugin.converters import convert_to_mmdet
    model = _model('mix/mocov2_resnet18_object-branch_cpu-tiny.py')
    res = convert_to_mmdet(dict(state_dict=model.state_dict()))
    src = {s for s, _ in res.mapped}
    assert 'backbone.layer4.1.conv2.weight' in src
    assert all(k.startswith('backbone.') for k in src)
    assert any(k.startswith('object_branch.') for k, _ in res.skipped)
