"""Object-level linear probe: classifier, seed handling, end to end."""
import importlib.util
import json
import os.path as osp

import pytest
import torch

from ccop_plugin.evaluation import (
    ProbeError,
    build_encoder,
    fit_logistic_regression,
    linear_probe,
    probe_features,
)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _clusters(n, num_classes, dim, separable, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    if separable:  # class means 8 sd apart along their own axis
        x[torch.arange(n), y] += 8.
    return x, y


def test_separable_features_score_100_and_noise_scores_chance():
    xt, yt = _clusters(120, 4, 16, True, 0)
    xv, yv = _clusters(80, 4, 16, True, 1)
    res = probe_features(xt, yt, xv, yv, 4, classes='abcd')
    assert res['acc'] == 1.0 and res['train_acc'] == 1.0
    assert res['per_class'] == dict(a=1.0, b=1.0, c=1.0, d=1.0)
    assert (res['n_train'], res['n_val'], res['feature_dim']) == (120, 80, 16)
    assert res['chance'] == 0.25

    # same labels, features independent of them: near chance on held-out
    nt, _ = _clusters(120, 4, 16, False, 2)
    nv, _ = _clusters(80, 4, 16, False, 3)
    res = probe_features(nt, yt, nv, yv, 4)
    assert res['acc'] < 0.5
    assert set(res['per_class']) == {'0', '1', '2', '3'}


def test_absent_val_class_is_none():
    xt, yt = _clusters(60, 3, 8, True, 0)
    xv, yv = _clusters(30, 3, 8, True, 1)
    keep = yv != 2
    res = probe_features(xt, yt, xv[keep], yv[keep], 3)
    assert res['per_class']['2'] is None
    assert res['acc'] == 1.0


def test_fit_is_deterministic():
    x, y = _clusters(90, 3, 10, False, 0)
    w1, b1 = fit_logistic_regression(x, y, 3)
    w2, b2 = fit_logistic_regression(x, y, 3)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    # weight decay shrinks the weights
    w3, _ = fit_logistic_regression(x, y, 3, weight_decay=1.)
    assert w3.norm() < w1.norm()


def _state(mod):
    return {k: v.clone() for k, v in mod.state_dict().items()}


def test_random_init_follows_the_seed_and_leaves_global_rng():
    state = torch.get_rng_state()
    b0, n0, info = build_encoder(None, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    b0b, n0b, _ = build_encoder(None, seed=0)
    b1, _, _ = build_encoder(None, seed=1)
    assert info['fpn'] and info['depth'] == 18 and info['seed'] == 0
    s0, s0b, s1 = _state(b0), _state(b0b), _state(b1)
    assert all(torch.equal(s0[k], s0b[k]) for k in s0)
    assert all(torch.equal(v, n0b.state_dict()[k])
               for k, v in n0.state_dict().items())
    assert not torch.equal(s0['conv1.weight'], s1['conv1.weight'])
    assert not b0.training and not n0.training
    assert not any(p.requires_grad for p in b0.parameters())


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from ccop_plugin.datagen import generate_synthetic_coco
    root = str(tmp_path_factory.mktemp('probe') / 'data')
    generate_synthetic_coco(root, seed=0, num_unlabeled=1, num_train=6,
                            num_val=4, img_size=64, min_scale=0.15,
                            max_scale=0.3)
    return root


def test_probe_end_to_end_is_deterministic_for_a_seed(tiny_data):
    r0 = linear_probe(None, tiny_data, seed=0, max_iter=50)
    r0b = linear_probe(None, tiny_data, seed=0, max_iter=50)
    r1 = linear_probe(None, tiny_data, seed=1, max_iter=50)
    for k in ('acc', 'train_acc', 'per_class', 'n_train', 'n_val'):
        assert r0[k] == r0b[k]
    assert r0['n_train'] > 0 and r0['n_val'] > 0
    assert r0['feature_dim'] == 128  # FPN channels, pooled to 1 x 1
    assert r0['encoder']['seed'] == 0 and r1['encoder']['seed'] == 1
    assert 0. <= r0['acc'] <= 1. and r0['classes'][0] == 'circle'
    stats = linear_probe(None, tiny_data, features='box_stats', max_iter=50)
    assert stats['feature_dim'] == 8
    tex = linear_probe(None, tiny_data, features='mask_texture', max_iter=50)
    assert tex['feature_dim'] == 25 and tex['n_val'] == r0['n_val']


def test_probe_loads_checkpoints_with_and_without_fpn(tiny_data, tmp_path):
    backbone, neck, _ = build_encoder(None, seed=3)
    ccop = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
    ccop.update({'neck.' + k: v for k, v in neck.state_dict().items()})
    ccop['img_neck_q.mlp.0.weight'] = torch.zeros(4, 4)  # skipped
    path = str(tmp_path / 'ccop.pth')
    torch.save(dict(state_dict=ccop), path)
    res = linear_probe(path, tiny_data, max_iter=50)
    rand = linear_probe(None, tiny_data, seed=3, max_iter=50)
    assert res['encoder']['fpn'] and res['encoder']['depth'] == 18
    # the same weights as random init with seed 3: the same features
    assert res['acc'] == rand['acc'] and res['train_acc'] == rand['train_acc']

    # MoCo v2 style: backbone + projection neck -> C4 + C5 features
    moco = {k: v for k, v in ccop.items() if k.startswith('backbone.')}
    moco['neck.mlp.0.weight'] = torch.zeros(4, 512)
    path = str(tmp_path / 'moco.pth')
    torch.save(dict(state_dict=moco), path)
    res = linear_probe(path, tiny_data, max_iter=50)
    assert not res['encoder']['fpn'] and res['feature_dim'] == 256 + 512

    # a checkpoint without a full ResNet is refused, naming the file
    del moco['backbone.layer4.1.conv2.weight']
    torch.save(dict(state_dict=moco), path)
    with pytest.raises(ProbeError, match='moco.pth'):
        linear_probe(path, tiny_data, max_iter=50)


def _tool():
    spec = importlib.util.spec_from_file_location(
        'linear_probe_tool', osp.join(REPO, 'tools', 'linear_probe.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_writes_json_and_keeps_existing_files(tiny_data, tmp_path,
                                                   capsys):
    tool = _tool()
    out = str(tmp_path / 'probe.json')
    assert tool.main(['none', '--data-root', tiny_data, '--out', out,
                      '--max-iter', '20']) == 0
    line = capsys.readouterr().out
    assert 'random init (seed 0)' in line and 'object accuracy' in line
    with open(out) as f:
        first = json.load(f)
    assert first['n_val'] > 0
    assert tool.main(['none', '--data-root', tiny_data, '--out', out,
                      '--seed', '1', '--max-iter', '20']) == 1
    assert 'exists' in capsys.readouterr().err
    with open(out) as f:
        assert json.load(f) == first
    assert tool.main(['none', '--data-root', tiny_data, '--out', out,
                      '--seed', '1', '--max-iter', '20',
                      '--overwrite']) == 0
    with open(out) as f:
        assert json.load(f)['seed'] == 1


def test_cli_one_line_errors(tmp_path, capsys):
    tool = _tool()
    assert tool.main(['none', '--data-root', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert 'instances_train.json' in err
    assert tool.main([str(tmp_path / 'nope.pth'), '--data-root',
                      str(tmp_path)]) == 1
    assert 'no such checkpoint' in capsys.readouterr().err
