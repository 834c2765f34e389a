"""CCOP -> mmdet / Detectron2 weight conversion."""
import os.path as osp
import pickle
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config

from ccop_plugin.converters import (
    ConversionError,
    convert_to_detectron2,
    convert_to_mmdet,
    d2_name,
    expected_keys_for,
    infer_resnet_depth,
    save_mmdet_checkpoint,
)
from ccop_plugin.converters.cli import main

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL_CFG = osp.join(
    REPO, 'configs/mask_rcnn',
    'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')


def build_small_maskrcnn(init_cfg=None, narrow=False):
    """The tiny Mask R-CNN config's model; with ``narrow``, its ResNet-18
    at the narrow width of ``narrow_ccop_sd``."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    from ccop_plugin.testing import narrow_resnet18
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(SMALL_CFG)
    cfg.model.init_cfg = init_cfg
    if narrow:
        narrow_resnet18(cfg.model)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model)


def test_mmdet_conversion_loads_into_maskrcnn(fake_ccop_sd):
    res = convert_to_mmdet(fake_ccop_sd)
    assert res.mapped and not res.missing
    assert all(k.startswith(('backbone.', 'neck.')) for k in res.state_dict)
    skipped = dict(res.skipped)
    assert 'encoder_k.module.backbone.conv1.weight' in skipped
    assert {'queue', 'queue_ptr', 'img_neck.mlp.0.weight',
            'roi_neck.fc.0.weight'} <= set(skipped)
    model = build_small_maskrcnn()
    incompatible = model.load_state_dict(res.state_dict, strict=False)
    assert not incompatible.unexpected_keys
    assert not [k for k in incompatible.missing_keys
                if k.startswith(('backbone.', 'neck.'))]
    msd = model.state_dict()
    for k, v in fake_ccop_sd.items():
        if k.startswith(('backbone.', 'neck.')):
            assert torch.equal(msd[k], v), k


def test_model_level_pretrained_init_loads_backbone_and_fpn(
        tmp_path, narrow_ccop_sd):
    res = convert_to_mmdet(narrow_ccop_sd)
    ckpt = str(tmp_path / 'tiny_mmdet.pth')
    save_mmdet_checkpoint(res, ckpt)
    model = build_small_maskrcnn(
        init_cfg=dict(type='Pretrained', checkpoint=ckpt), narrow=True)
    model.init_weights()
    msd = model.state_dict()
    for k in ('backbone.conv1.weight', 'backbone.layer4.1.bn2.running_var',
              'neck.lateral_convs.0.conv.weight', 'neck.fpn_convs.3.bn.bias'):
        assert torch.equal(msd[k], narrow_ccop_sd[k]), k
    # heads keep their own initialisation
    assert msd['rpn_head.rpn_conv.weight'].abs().sum() > 0


def test_no_fpn_and_expected_keys(fake_ccop_sd):
    res = convert_to_mmdet(fake_ccop_sd, with_fpn=False)
    assert all(k.startswith('backbone.') for k in res.state_dict)
    assert any(r.startswith('FPN not transferred') for _, r in res.skipped)
    assert not res.missing
    assert infer_resnet_depth(fake_ccop_sd) == 18
    keys = expected_keys_for(fake_ccop_sd)
    assert 'neck.lateral_convs.0.bn.weight' in keys


def test_fpn_of_other_layout_is_not_half_loaded(fake_ccop_sd):
    # target FPN without BN (mmdet's default): CCOP's FPN must not load
    from mmdet.models.backbones import ResNet
    from mmdet.models.necks import FPN
    expected = {'backbone.' + k: v.shape
                for k, v in ResNet(depth=18).state_dict().items()}
    expected.update({'neck.' + k: v.shape for k, v in FPN(
        [64, 128, 256, 512], 128, num_outs=5).state_dict().items()})
    res = convert_to_mmdet(fake_ccop_sd, expected=expected)
    assert not any(k.startswith('neck.') for k in res.state_dict)
    assert any('FPN differs' in r for _, r in res.skipped)
    # backbone complete; the target FPN gets no weights, and says so
    assert res.missing and all(k.startswith('neck.') for k in res.missing)
    assert any('FPN gets no weights' in w and 'differs' in w
               for w in res.warnings)


def test_mmpretrain_mocov2_checkpoint():
    from mmpretrain.models.backbones import ResNet
    bb = ResNet(depth=18).state_dict()
    sd = OrderedDict(('backbone.' + k, v) for k, v in bb.items())
    sd['neck.mlp.0.weight'] = torch.randn(512, 512)
    sd['neck.mlp.2.weight'] = torch.randn(128, 512)
    for k, v in list(sd.items()):
        sd['momentum_encoder.module.' + k] = v
    sd['queue'] = torch.randn(128, 64)
    sd['queue_ptr'] = torch.zeros(1, dtype=torch.long)
    res = convert_to_mmdet(dict(state_dict=sd, meta={}))
    assert set(res.state_dict) == {'backbone.' + k for k in bb}
    reasons = dict(res.skipped)
    assert reasons['neck.mlp.0.weight'].startswith('neck is not an FPN')
    assert not res.missing
    # --no-fpn on a checkpoint without an FPN: the neck is still named for
    # what it is (it was labelled "FPN not transferred")
    res = convert_to_mmdet(dict(state_dict=sd, meta={}), with_fpn=False)
    reasons = dict(res.skipped)
    assert reasons['neck.mlp.0.weight'].startswith('neck is not an FPN')
    assert 'FPN not transferred' not in res.report()


def test_bare_torchvision_style_state_dict():
    from mmdet.models.backbones import ResNet
    bb = ResNet(depth=18).state_dict()
    res = convert_to_mmdet({'module.' + k: v for k, v in bb.items()})
    assert set(res.state_dict) == {'backbone.' + k for k in bb}


def test_refuses_when_nothing_maps(tmp_path, capsys):
    """The library raises; the command line exits 1 with the reason and
    writes nothing (the tool as a process: test_full_disk_gives_...)."""
    sd = {'encoder_k.module.backbone.conv1.weight': torch.randn(64, 3, 7, 7),
          'queue': torch.randn(4, 4)}
    with pytest.raises(ConversionError, match='no weight maps'):
        convert_to_mmdet(sd)
    src = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=sd), src)
    assert main([src, str(tmp_path / 'out.pth')]) == 1
    assert 'no weight maps' in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'out.pth')


def test_d2_names():
    cases = {
        'backbone.conv1.weight': 'backbone.bottom_up.stem.conv1.weight',
        'backbone.bn1.running_mean':
        'backbone.bottom_up.stem.conv1.norm.running_mean',
        'backbone.layer1.0.conv1.weight':
        'backbone.bottom_up.res2.0.conv1.weight',
        'backbone.layer3.5.bn3.bias':
        'backbone.bottom_up.res4.5.conv3.norm.bias',
        'backbone.layer2.0.downsample.0.weight':
        'backbone.bottom_up.res3.0.shortcut.weight',
        'backbone.layer4.0.downsample.1.running_var':
        'backbone.bottom_up.res5.0.shortcut.norm.running_var',
        'neck.lateral_convs.0.conv.weight': 'backbone.fpn_lateral2.weight',
        'neck.lateral_convs.2.bn.weight': 'backbone.fpn_lateral4.norm.weight',
        'neck.fpn_convs.3.conv.bias': 'backbone.fpn_output5.bias',
        'neck.fpn_convs.1.bn.running_mean':
        'backbone.fpn_output3.norm.running_mean',
    }
    for src, dst in cases.items():
        assert d2_name(src) == dst
    assert d2_name('backbone.layer1.0.bn1.weight', full_names=False) == \
        'res2.0.conv1.norm.weight'
    with pytest.raises(ConversionError):
        d2_name('backbone.stem.0.conv.weight')


def test_detectron2_export(tmp_path, fake_ccop_ckpt, narrow_ccop_sd):
    out = str(tmp_path / 'ccop_d2.pkl')
    assert main([fake_ccop_ckpt, out], default_format='detectron2') == 0
    with open(out, 'rb') as f:
        d2 = pickle.load(f)
    assert d2['matching_heuristics'] is True and d2['__author__']
    model = d2['model']
    assert not [k for k in model if 'num_batches_tracked' in k]
    assert (model['backbone.bottom_up.res5.1.conv2.norm.running_var'] ==
            narrow_ccop_sd['backbone.layer4.1.bn2.running_var'].numpy()).all()
    assert (model['backbone.fpn_output2.weight'] ==
            narrow_ccop_sd['neck.fpn_convs.0.conv.weight'].numpy()).all()
    n_tensors = sum(1 for k in narrow_ccop_sd
                    if k.startswith(('backbone.', 'neck.')) and
                    not k.endswith('num_batches_tracked'))
    assert len(model) == n_tensors
    d2_nofpn, _ = convert_to_detectron2(narrow_ccop_sd, with_fpn=False)
    assert not [k for k in d2_nofpn['model'] if 'fpn' in k]


def test_mmdet_cli_report(tmp_path, fake_ccop_ckpt, narrow_small_cfg,
                          capsys):
    out = str(tmp_path / 'ccop_mmdet.pth')
    assert main([fake_ccop_ckpt, out, '--config', narrow_small_cfg]) == 0
    stdout = capsys.readouterr().out
    assert 'mapped: 168 keys' in stdout
    assert 'missing (in the target, not in the checkpoint): 0 keys' in \
        stdout
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert 'state_dict' in ckpt and 'meta' in ckpt


def test_real_ccop_tiny_model_converts_completely(tmp_path):
    """The CCOP algorithm of the tiny pre-training config -> mmdet: the
    query backbone + FPN load into the tiny Mask R-CNN with nothing missing.
    """
    from mmpretrain.registry import MODELS

    import ccop_plugin  # noqa: F401  (registers CCOP)
    if MODELS.get('CCOP') is None:
        pytest.skip('CCOP is not registered')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/ccop/ccop_resnet18-fpn_cpu-tiny.py'))
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        sd = MODELS.build(cfg.model).state_dict()
    res = convert_to_mmdet(dict(state_dict=sd))
    assert not res.missing
    assert all(k.startswith(('backbone.', 'neck.')) for k in res.state_dict)
    assert not any(k.startswith(('encoder_k.', 'img_neck.', 'roi_neck.'))
                   for k in res.state_dict)
    # the object branch (RoI neck, heads, RoI queue, its momentum copy) and
    # the image queue are named as pre-training parts
    skipped = dict(res.skipped)
    assert 'object branch' in skipped['object_branch.roi_neck.mlp.0.weight']
    assert 'object branch' in skipped['object_branch.roi_queue.keys']
    assert skipped['queue.keys'] == 'queue / buffer'
    model = build_small_maskrcnn()
    inc = model.load_state_dict(res.state_dict, strict=False)
    assert not inc.unexpected_keys
    assert not [k for k in inc.missing_keys
                if k.startswith(('backbone.', 'neck.'))]
    msd = model.state_dict()
    assert all(torch.equal(msd[k], v) for k, v in res.state_dict.items())


def test_detectron2_round_trip_and_reference_ccop_layout(tmp_path,
                                                         narrow_ccop_sd):
    """D2 export -> mmdet gives back the same tensors; so does a checkpoint
    laid out as the reference CCOP code's (D2 ResNet-FPN under
    ``backbone_q.``, momentum copy under ``backbone_k.``)."""
    from ccop_plugin.converters import save_detectron2
    d2, _ = convert_to_detectron2(narrow_ccop_sd)
    out = str(tmp_path / 'x.pkl')
    save_detectron2(d2, out)
    back = convert_to_mmdet(out)
    assert not back.missing
    for k, v in back.state_dict.items():
        assert torch.equal(v, narrow_ccop_sd[k]), k
    short, _ = convert_to_detectron2(narrow_ccop_sd, full_names=False)
    assert set(convert_to_mmdet(short['model']).state_dict) == \
        set(back.state_dict)
    ref = OrderedDict()
    for name, arr in d2['model'].items():
        ref[name.replace('backbone.', 'backbone_q.', 1)] = torch.as_tensor(arr)
        ref[name.replace('backbone.', 'backbone_k.', 1)] = torch.as_tensor(arr)
    ref['img_neck_q.fc.weight'] = torch.randn(8, 8)
    ref['roi_queue'] = torch.randn(8, 8)
    res = convert_to_mmdet(dict(state_dict=ref))
    assert set(res.state_dict) == set(back.state_dict) and not res.missing
    reasons = dict(res.skipped)
    assert reasons['backbone_k.bottom_up.stem.conv1.weight'].startswith(
        'momentum')
    assert 'img_neck_q.fc.weight' in reasons and 'roi_queue' in reasons


def test_real_mmpretrain_mocov2_tiny_model_converts():
    """mmpretrain's MoCoV2 (tiny config of the comparison experiment):
    backbone only, its projection neck and momentum encoder skipped."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    import ccop_plugin  # noqa: F401
    path = osp.join(REPO, 'configs/mocov2/mocov2_resnet18_cpu-tiny.py')
    if not osp.isfile(path):
        pytest.skip('no MoCo v2 tiny config')
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        sd = MODELS.build(cfg.model).state_dict()
    res = convert_to_mmdet(dict(state_dict=sd))
    assert res.state_dict and not res.missing
    assert all(k.startswith('backbone.') for k in res.state_dict)
    model = build_small_maskrcnn()
    inc = model.load_state_dict(res.state_dict, strict=False)
    assert not inc.unexpected_keys
    assert not [k for k in inc.missing_keys if k.startswith('backbone.')]
