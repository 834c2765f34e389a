"""Object-level linear probe: classifier, seed handling, end to end."""
import json
import os.path as osp

import pytest
import torch
from mmdet.models.necks import FPN

from ccop_plugin.evaluation import (
    ProbeError,
    build_encoder,
    cli,
    fit_logistic_regression,
    linear_probe,
    load_split,
    pool_roi_features,
    probe_features,
    select_regularisation,
)
from ccop_plugin.evaluation.linear_probe import WEIGHT_DECAYS


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
    b0, info = build_encoder(None, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    b0b, _ = build_encoder(None, seed=0)
    b1, _ = build_encoder(None, seed=1)
    assert info['depth'] == 18 and info['seed'] == 0
    s0, s0b, s1 = _state(b0), _state(b0b), _state(b1)
    assert all(torch.equal(s0[k], s0b[k]) for k in s0)
    assert not torch.equal(s0['conv1.weight'], s1['conv1.weight'])
    assert not b0.training
    assert not any(p.requires_grad for p in b0.parameters())


def test_selection_picks_the_best_val_point_and_prefers_strong_decay():
    xt, yt = _clusters(120, 4, 16, True, 0)
    xv, yv = _clusters(80, 4, 16, True, 1)
    sel = select_regularisation(xt, yt, xv, yv, 4, (1e-3, 1e-1, 1e4),
                                (5, 50))
    # every point separates the clusters: the tie goes to the strongest
    # decay, then to the fewest iterations
    assert [g['select_acc'] for g in sel['grid']] == [1.0] * 6
    assert (sel['weight_decay'], sel['max_iter']) == (1e4, 5)
    assert [(g['weight_decay'], g['max_iter']) for g in sel['grid']] == [
        (1e4, 5), (1e4, 50), (1e-1, 5), (1e-1, 50), (1e-3, 5), (1e-3, 50)]
    # features unrelated to the labels: the points differ on val, the
    # choice is the first of the best
    nt, _ = _clusters(120, 4, 16, False, 2)
    nv, _ = _clusters(80, 4, 16, False, 3)
    sel = select_regularisation(nt, yt, nv, yv, 4, (1e-3, 1e-1, 1e4),
                                (5, 50))
    accs = [g['select_acc'] for g in sel['grid']]
    assert len(set(accs)) > 1 and sel['select_acc'] == max(accs)
    best = sel['grid'][accs.index(max(accs))]
    assert (sel['weight_decay'], sel['max_iter']) == (
        best['weight_decay'], best['max_iter'])
    with pytest.raises(ValueError, match='empty'):
        select_regularisation(xt, yt, xv, yv, 4, (), (5, ))


def test_roi_features_are_the_shared_roi_pooling_of_c4_and_c5():
    from torchvision.ops import roi_align
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, c, 64 // s, 64 // s, generator=g)
             for c, s in ((4, 4), (5, 8), (6, 16), (7, 32))]
    rois = torch.tensor([[0, 3., 5., 40., 30.], [1, 10., 10., 60., 63.]])
    out = pool_roi_features(feats, rois, stages=(2, 3), pool=2)
    assert out.shape == (2, (6 + 7) * 4)
    c4 = roi_align(feats[2], rois, 7, 1 / 16, 2, True)
    ref = torch.nn.functional.adaptive_avg_pool2d(c4, 2).flatten(1)
    assert torch.allclose(out[:, :24], ref)


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
    for k in ('acc', 'train_acc', 'select_acc', 'per_class', 'n_train',
              'n_val', 'weight_decay', 'grid'):
        assert r0[k] == r0b[k]
    assert r0['n_train'] > 0 and r0['n_val'] > 0
    assert r0['feature_dim'] == 128 + 256  # C3 + C4, one cell (version 4)
    assert r0['encoder']['seed'] == 0 and r1['encoder']['seed'] == 1
    assert 0. <= r0['acc'] <= 1. and r0['classes'][0] == 'circle'
    # the weight decay was chosen on val from the grid, iterations fixed
    assert len(r0['grid']) == len(WEIGHT_DECAYS)
    assert r0['max_iter'] == 50 and r0['weight_decay'] in WEIGHT_DECAYS
    assert r0['select_split'] == 'val' and r0['selected_on_scored_split']
    stats = linear_probe(None, tiny_data, features='box_stats', max_iter=50)
    assert stats['feature_dim'] == 8
    tex = linear_probe(None, tiny_data, features='mask_texture', max_iter=50)
    assert tex['feature_dim'] == 25 and tex['n_val'] == r0['n_val']
    fixed = linear_probe(None, tiny_data, features='box_stats',
                         select_split=None, weight_decay=0.5, max_iter=20)
    assert fixed['grid'] == [] and fixed['select_acc'] is None
    assert fixed['weight_decay'] == 0.5


def test_every_method_is_probed_on_the_same_layers(tiny_data, tmp_path):
    """A checkpoint with an FPN, one without and random init are probed on
    the same backbone stages (an FPN used to give random init 128-d
    features against 768-d for MoCo v2), with the RoI layout kept."""
    # the science protocol's width 16: 8 MB written, not 83
    backbone, _ = build_encoder(None, seed=3, width=16)
    fpn = FPN([16, 32, 64, 128], 128, num_outs=4)
    ccop = {'backbone.' + k: v for k, v in backbone.state_dict().items()}
    moco = dict(ccop, **{'neck.mlp.0.weight': torch.zeros(4, 128)})
    ccop.update({'neck.' + k: v for k, v in fpn.state_dict().items()})
    ccop['img_neck_q.mlp.0.weight'] = torch.zeros(4, 4)  # skipped
    res = {}
    for name, sd in (('ccop', ccop), ('moco', moco)):
        path = str(tmp_path / f'{name}.pth')
        torch.save(dict(state_dict=sd), path)
        res[name] = linear_probe(path, tiny_data, max_iter=20)
    res['none'] = linear_probe(None, tiny_data, seed=3, random_width=16,
                               max_iter=20)
    dims = {k: r['feature_dim'] for k, r in res.items()}
    # C3 + C4 (32 + 64 channels at width 16) pooled, not the FPN
    assert dims['ccop'] == dims['moco'] == dims['none'] == 32 + 64
    # the same backbone weights: the same features, whatever else is there
    for k in ('acc', 'train_acc', 'select_acc', 'weight_decay'):
        assert res['ccop'][k] == res['moco'][k] == res['none'][k]
    assert res['moco']['encoder']['depth'] == 18

    # a checkpoint without a full ResNet is refused, naming the file
    del moco['backbone.layer4.1.conv2.weight']
    path = str(tmp_path / 'moco.pth')
    torch.save(dict(state_dict=moco), path)
    with pytest.raises(ProbeError, match='moco.pth'):
        linear_probe(path, tiny_data, max_iter=50)


def test_split_is_read_with_pycocotools_skipping_crowd_and_empty(tmp_path):
    root = tmp_path / 'd'
    (root / 'annotations').mkdir(parents=True)
    coco = dict(
        images=[dict(id=2, file_name='b.png', height=8, width=8),
                dict(id=1, file_name='a.png', height=8, width=8)],
        categories=[dict(id=7, name='star'), dict(id=3, name='circle')],
        annotations=[
            dict(id=1, image_id=1, category_id=7, bbox=[1, 1, 4, 4],
                 iscrowd=0, area=16),
            dict(id=2, image_id=1, category_id=3, bbox=[0, 0, 2, 3],
                 iscrowd=1, area=6),
            dict(id=3, image_id=2, category_id=3, bbox=[0, 0, 0.5, 3],
                 iscrowd=0, area=1.5)])
    with open(root / 'annotations' / 'instances_train.json', 'w') as f:
        json.dump(coco, f)
    split = load_split(str(root), 'train')
    assert split['classes'] == ['circle', 'star']  # category-id order
    assert split['skipped'] == 2 and len(split['images']) == 1
    assert split['images'][0].endswith(osp.join('train', 'a.png'))
    assert split['boxes'][0].tolist() == [[1, 1, 5, 5]]
    assert split['labels'][0].tolist() == [1]
    (root / 'annotations' / 'instances_val.json').write_text('{"images": 3')
    with pytest.raises(ProbeError, match='instances_val.json'):
        load_split(str(root), 'val')


def test_cli_writes_json_and_keeps_existing_files(tiny_data, tmp_path,
                                                   capsys):
    out = str(tmp_path / 'probe.json')
    assert cli.main(['none', '--data-root', tiny_data, '--out', out,
                     '--max-iter', '20']) == 0
    line = capsys.readouterr().out
    assert 'random init (seed 0)' in line and 'object accuracy' in line
    with open(out) as f:
        first = json.load(f)
    assert first['n_val'] > 0
    assert cli.main(['none', '--data-root', tiny_data, '--out', out,
                     '--seed', '1', '--max-iter', '20']) == 1
    assert 'exists' in capsys.readouterr().err
    with open(out) as f:
        assert json.load(f) == first
    assert cli.main(['none', '--data-root', tiny_data, '--out', out,
                     '--seed', '1', '--max-iter', '20',
                     '--overwrite']) == 0
    with open(out) as f:
        assert json.load(f)['seed'] == 1


def test_cli_supervised_control_and_old_flags(tiny_data, tmp_path, capsys):
    out = str(tmp_path / 'control.json')
    assert cli.main(['supervised', '--data-root', tiny_data, '--out', out,
                     '--supervised-steps', '2', '--max-iter', '20',
                     '--no-fpn', '--pool', '1']) == 0
    line = capsys.readouterr().out
    assert line.startswith('supervised control (seed 0): object accuracy')
    assert 'chosen on val' in line and line.count('\n') == 1
    with open(out) as f:
        res = json.load(f)
    assert res['supervised']['steps'] == 2 and res['feature_dim'] == 128 + 256


def test_cli_one_line_errors(tmp_path, capsys):
    assert cli.main(['none', '--data-root', str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1
    assert 'instances_train.json' in err
    assert cli.main([str(tmp_path / 'nope.pth'), '--data-root',
                     str(tmp_path)]) == 1
    assert 'no such checkpoint' in capsys.readouterr().err


def test_width_16_random_init_and_checkpoint_probe_alike(tiny_data,
                                                         tmp_path, capsys):
    """The science protocol's width-16 ResNet-18: random init with
    ``--width 16`` and a width-16 checkpoint give the same features for the
    same weights (C3 + C4 of width 16: 32 + 64 channels)."""
    rand = linear_probe(None, tiny_data, seed=4, random_width=16,
                        max_iter=20)
    assert rand['feature_dim'] == 32 + 64
    assert rand['encoder']['width'] == 16
    net, _ = build_encoder(None, seed=4, width=16)
    ckpt = str(tmp_path / 'w16.pth')
    torch.save({'state_dict': {'backbone.' + k: v
                               for k, v in net.state_dict().items()}}, ckpt)
    loaded = linear_probe(ckpt, tiny_data, max_iter=20)
    assert loaded['acc'] == rand['acc']
    assert loaded['feature_dim'] == rand['feature_dim']
    assert cli.main(['none', '--data-root', tiny_data, '--width', '16',
                         '--seed', '4', '--max-iter', '20']) == 0
    assert f'{100 * rand["acc"]:.1f}%' in capsys.readouterr().out
