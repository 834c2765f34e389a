"""ProposalStatsHook: epoch-end proposal counts from data-loader workers."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import RepeatDataset, pseudo_collate
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, HOOKS

import ccop_plugin  # noqa: F401
from ccop_plugin.engine.hooks import proposal_stats_hook


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def test_counts_summed_over_workers_and_logged(tmp_path, monkeypatch):
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    images, anns = [], []
    for i in range(6):
        cv2.imwrite(str(img_dir / f'{i}.png'),
                    np.full((60, 80, 3), 100, np.uint8))
        images.append(dict(id=i + 1, file_name=f'{i}.png', width=80,
                           height=60))
    # images 0-3: one good box and one empty box each; 4-5: only bad boxes
    for i in range(6):
        if i < 4:
            anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                             bbox=[5, 5, 40, 30]))
        anns.append(dict(id=len(anns) + 1, image_id=i + 1,
                         bbox=[5, 5, 0, 30]))
    (tmp_path / 'p.json').write_text(json.dumps(dict(images=images,
                                                     annotations=anns)))
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadProposals', log_interval=0),
                dict(type='BoxAwareMultiView', size=32, scale=(0.9, 1.0),
                     part_thr=0.0, area_thr=None),
                dict(type='PackBoxSelfSupInputs')]
    ds = DATASETS.build(dict(type='ProposalImageDataset',
                             ann_file=str(tmp_path / 'p.json'),
                             data_prefix=dict(img_path=str(img_dir)),
                             pipeline=pipeline))
    loader = torch.utils.data.DataLoader(
        RepeatDataset(ds, times=2), batch_size=4, num_workers=2,
        collate_fn=pseudo_collate)
    logs = []
    monkeypatch.setattr(
        proposal_stats_hook, 'print_log',
        lambda msg, logger=None, level=20: logs.append((level, msg)))
    hook = HOOKS.build(dict(type='ProposalStatsHook', warn_fallback=0.3))
    runner = SimpleNamespace(epoch=0, train_dataloader=loader)
    hook.before_train_epoch(runner)
    for i, batch in enumerate(loader):
        hook.after_train_iter(runner, i, batch)
    hook.after_train_epoch(runner)
    # 12 samples (2 x 6 images) from two worker processes
    assert hook.counts == dict(images=12, kept=8, dropped=12, fallback=4)
    text = [m for _, m in logs]
    assert any('6 images, 10 proposals' in m and '6 invalid' in m
               for m in text)  # the counts of the file, from the dataset
    assert any('epoch 1: proposals of 12 training images: 8 kept, 12 '
               'invalid dropped, 4 images (33.3%) used the whole image' in m
               for m in text)
    assert [lvl for lvl, _ in logs].count(30) == 1  # 33% > warn_fallback
    hook.before_train_epoch(runner)
    assert hook.counts['images'] == 0
