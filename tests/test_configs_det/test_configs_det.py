"""mmdet transfer configs: parse, build, and a short fine-tune on CPU."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs/mask_rcnn')
SMALL_CFG = osp.join(
    CFG_DIR, 'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')
CONFIGS = sorted(glob.glob(osp.join(CFG_DIR, '*.py')))


def _norm_types(node, found):
    if isinstance(node, dict):
        if 'norm_cfg' in node and node['norm_cfg']:
            found.append(node['norm_cfg']['type'])
        for v in node.values():
            _norm_types(v, found)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _norm_types(v, found)
    return found


def test_configs_exist():
    names = [osp.basename(c) for c in CONFIGS]
    assert any('lvis' in n for n in names)
    assert any('cityscapes' in n for n in names)
    assert any('synth' in n for n in names)
    assert len(names) >= 5


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_parses(path):
    cfg = Config.fromfile(path)
    m = cfg.model
    assert m.type == 'MaskRCNN'
    bb_init = m.backbone.get('init_cfg')
    # nothing downloads: the backbone loads either nothing or our checkpoint
    assert bb_init is None or 'torchvision' not in bb_init['checkpoint']
    assert cfg.get('load_from') is None
    if 'syncbn' in osp.basename(path) or 'synth' in osp.basename(path):
        # the self-supervised protocol
        assert m.backbone.frozen_stages == -1
        assert m.backbone.norm_eval is False
        assert m.neck.norm_cfg is not None
        if '4conv1fc' in osp.basename(path):
            assert m.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
            assert m.roi_head.bbox_head.norm_cfg is not None
            assert m.roi_head.mask_head.norm_cfg is not None
        assert set(_norm_types(m, [])) <= {'SyncBN', 'BN'}
    else:
        # mmdet's plain protocol, backbone-only transfer
        assert m.backbone.frozen_stages == 1 and m.backbone.norm_eval
        assert bb_init['type'] == 'Pretrained'
        assert bb_init['prefix'] == 'backbone.'


def test_syncbn_r50_config_builds_and_matches_converted_keys():
    """The R50 protocol config builds, and a converted CCOP R50 checkpoint
    (fake, random) covers its backbone + FPN exactly."""
    from ccop_plugin.converters import (
        convert_to_mmdet,
        expected_keys_from_config,
    )
    from ccop_plugin.testing.checkpoints import (
        fake_ccop_state_dict as make_fake_ccop_state_dict,
    )
    path = osp.join(CFG_DIR,
                    'mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_coco.py')
    expected = expected_keys_from_config(path)
    sd = make_fake_ccop_state_dict(depth=50, fpn_channels=256)
    res = convert_to_mmdet(sd, expected=expected)
    assert not res.missing
    assert len(res.state_dict) == len(expected)


def test_small_config_builds_and_reverts_syncbn():
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(SMALL_CFG)
    assert cfg.model.roi_head.bbox_head.num_classes == 6
    assert cfg.model.neck.out_channels == 128
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    for key in ('backbone', 'neck'):
        cfg.model[key].norm_cfg = dict(type='SyncBN', requires_grad=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
    assert not any(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in model.modules())
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 160, 160))
    assert [f.shape[1] for f in feats] == [128] * 5


@pytest.mark.slow
def test_short_finetune_runs_and_evaluates(tmp_path):
    """Convert a fake CCOP checkpoint, fine-tune 3 iterations on a few
    generated images (SyncBN config in one CPU process), evaluate. The
    ResNet-18 is the narrow one of ``ccop_plugin.testing`` (checkpoint and
    config alike) and the last checkpoint has no optimizer state: 16 MB
    written instead of 154."""
    from ccop_plugin.apis import finetune_detector
    from ccop_plugin.converters import convert_to_mmdet, save_mmdet_checkpoint
    from ccop_plugin.datagen import generate_synthetic_coco
    from ccop_plugin.testing import narrow_resnet18
    from ccop_plugin.testing.checkpoints import narrow_fake_ccop_state_dict
    data = str(tmp_path / 'synth')
    generate_synthetic_coco(data, seed=0, num_unlabeled=0, num_train=4,
                            num_val=2, img_size=96)
    ckpt = str(tmp_path / 'ccop_mmdet.pth')
    save_mmdet_checkpoint(convert_to_mmdet(narrow_fake_ccop_state_dict()),
                          ckpt)
    cfg = Config.fromfile(SMALL_CFG)
    narrow_resnet18(cfg.model)
    sync = dict(type='SyncBN', requires_grad=True)
    metrics = finetune_detector(
        cfg, str(tmp_path / 'work'), checkpoint=ckpt, data_root=data,
        max_iters=3,
        cfg_options={
            'default_hooks.checkpoint.save_optimizer': False,
            'train_dataloader.batch_size': 2,
            'val_dataloader.batch_size': 2,
            'model.backbone.norm_cfg': sync,
            'model.neck.norm_cfg': sync,
            'model.roi_head.bbox_head.norm_cfg': sync,
            'model.roi_head.mask_head.norm_cfg': sync,
            # keep low-score detections so that the metric has results
            'model.test_cfg.rcnn.score_thr': 0.0,
            'default_hooks.logger.interval': 1,
        })
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50'):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0
    saved = json.load(open(tmp_path / 'work' / 'finetune_metrics.json'))
    assert saved == metrics
    # the converted weights were loaded by the model-level Pretrained init
    logs = glob.glob(str(tmp_path / 'work' / '*' / '*.log'))
    assert logs and f'load model from: {ckpt}' in open(logs[0]).read()


def test_finetune_cli_refuses_missing_checkpoint(tmp_path, capsys):
    from ccop_plugin.engine.finetune_cli import main
    rc = main([SMALL_CFG, '--work-dir', str(tmp_path / 'w'),
               '--checkpoint', str(tmp_path / 'missing.pth')])
    assert rc == 1
    assert 'does not exist' in capsys.readouterr().err
