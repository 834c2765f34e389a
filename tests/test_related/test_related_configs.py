"""Each related method's tiny config trains a few steps on CPU; so do the
mixes (PLRC on selective-search boxes, CCOP on heat-map proposals)."""
import json

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

import ccop_plugin  # noqa: F401

pytestmark = pytest.mark.slow


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
def test_tiny_config_trains(cfg_file, tiny_runner):
    torch.manual_seed(0)
    runner = tiny_runner(cfg_file)
    warmup = []  # heat-map boxes: the iterations the generator saw
    src = getattr(runner.model, 'box_source', None)
    if src is not None:
        gen = src.generator
        src.generator = lambda f, s, it: warmup.append(it) or gen(f, s, it)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner.train()
    assert runner.iter == 3
    losses = _losses_finite(runner)
    if 'plrc' in cfg_file:
        assert {'train/loss_img', 'train/loss_point',
                'train/loss_distill'} <= set(losses)
        # TeacherTempWarmupHook (custom_hooks): iteration 2 of 10 of the
        # warm-up 0.04 -> 0.07
        assert runner.model.distill_head.teacher_temp == pytest.approx(
            0.04 + 0.03 * 2 / 10)
    elif 'ccop' in cfg_file:
        assert {'train/loss_roi', 'train/loss_intra'} <= set(losses)
        assert warmup == [0, 1, 2]  # 2 warm-up + 1 heat-map step
    else:
        assert {'train/loss_l0', 'train/loss_l3'} <= set(losses)


def test_ccop_on_heatmap_proposals(tiny_runner, tmp_path):
    torch.manual_seed(0)
    # no annotations: warm-up epoch on whole-image boxes
    runner = tiny_runner(
        'mix/ccop_resnet18-fpn_heatmap-proposals_cpu-tiny.py',
        with_anns=False)
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
    ds = runner.train_dataloader.dataset
    assert ds.proposal_file.endswith('heatmap_proposals_epoch_2.json')
    assert ds.proposal_stats['file'] == ds.proposal_file
    assert any(len(ds.get_data_info(i)['proposals_xywh'])
               for i in range(len(ds)))
