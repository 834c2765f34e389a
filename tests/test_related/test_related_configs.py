"""Each related method's tiny config trains a few steps on CPU; so do the
mixes (PLRC on selective-search boxes, CCOP on heat-map proposals)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

import ccop_plugin  # noqa: F401

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs')


def _write_tiny_coco(root, num_imgs=4, size=(120, 150), with_anns=True):
    import cv2
    rng = np.random.default_rng(0)
    (root / 'images').mkdir(exist_ok=True)
    images, anns = [], []
    for i in range(num_imgs):
        h, w = size
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        name = f'{i:03d}.jpg'
        cv2.imwrite(str(root / 'images' / name), img)
        images.append(dict(id=i + 1, file_name=name, width=w, height=h))
        for _ in range(6 if with_anns else 0):
            x, y = rng.uniform(0, w * 0.5), rng.uniform(0, h * 0.5)
            bw, bh = rng.uniform(40, w * 0.5), rng.uniform(40, h * 0.5)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             category_id=1, bbox=[x, y, bw, bh],
                             area=bw * bh, iscrowd=0))
    with open(root / 'proposals.json', 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='proposal')]), f)


def _runner(cfg_file, tmp_path, iters=3, with_anns=True):
    _write_tiny_coco(tmp_path, with_anns=with_anns)
    cfg = Config.fromfile(osp.join(ROOT, cfg_file))
    cfg.train_dataloader.dataset.data_root = str(tmp_path) + '/'
    cfg.train_dataloader.dataset.ann_file = 'proposals.json'
    cfg.train_dataloader.dataset.data_prefix = dict(img_path='images/')
    if cfg.train_cfg.type == 'IterBasedTrainLoop':
        cfg.train_cfg.max_iters = iters
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.,
                                    by_epoch=False)]
    cfg.work_dir = str(tmp_path / 'work')
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=1000)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.launcher = 'none'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return Runner.from_cfg(cfg)


def _losses_finite(runner):
    scalars = runner.message_hub.log_scalars
    keys = [k for k in scalars if k.startswith('train/loss')]
    assert keys, 'no loss logged'
    for k in keys:
        assert np.isfinite(scalars[k].current()), k
    return {k: scalars[k].current() for k in keys}


@pytest.mark.parametrize('cfg_file', [
    'plrc/plrc_resnet18_cpu-tiny.py',
    'mcl/mcl_resnet18-fpn_cpu-tiny.py',
    'mix/plrc_resnet18_ss-proposals_cpu-tiny.py',
    'mix/ccop_resnet18-fpn_heatmap-instep_cpu-tiny.py',
])
def test_tiny_config_trains(cfg_file, tmp_path):
    torch.manual_seed(0)
    runner = _runner(cfg_file, tmp_path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner.train()
    assert runner.iter == 3
    losses = _losses_finite(runner)
    if 'plrc' in cfg_file:
        assert {'train/loss_img', 'train/loss_point',
                'train/loss_distill'} <= set(losses)
    elif 'ccop' in cfg_file:
        assert {'train/loss_roi', 'train/loss_intra'} <= set(losses)
        assert runner.model.step.item() == 3  # 2 warm-up + 1 heat-map step
    else:
        assert {'train/loss_l0', 'train/loss_l3'} <= set(losses)


def test_ccop_on_heatmap_proposals(tmp_path):
    torch.manual_seed(0)
    # no annotations: warm-up epoch on whole-image boxes
    runner = _runner('mix/ccop_resnet18-fpn_heatmap-proposals_cpu-tiny.py',
                     tmp_path, with_anns=False)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner.train()
    assert runner.epoch == 2
    _losses_finite(runner)
    out = tmp_path / 'work' / 'heatmap_proposals_epoch_1.json'
    data = json.loads(out.read_text())
    assert len(data['images']) == 4 and len(data['annotations']) >= 4
    for a in data['annotations']:
        x, y, w, h = a['bbox']
        assert w > 0 and h > 0 and x >= 0 and y >= 0
        assert x + w <= 150 + 1e-3 and y + h <= 120 + 1e-3
    lp = [t for t in runner.train_dataloader.dataset.pipeline.transforms
          if type(t).__name__ == 'LoadProposals']
    assert lp and lp[0].proposal_file.endswith(
        'heatmap_proposals_epoch_2.json')
