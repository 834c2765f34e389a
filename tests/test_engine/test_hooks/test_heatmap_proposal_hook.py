"""HeatmapProposalHook: the file it writes and the boxes the next epoch
trains on (also through persistent data-loader workers)."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import RepeatDataset
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, HOOKS

import ccop_plugin  # noqa: F401
from ccop_plugin.models.utils.heatmap_proposals import image_heatmap_boxes

# (file name, height, width, bright rectangle x1, y1, x2, y2)
IMAGES = [('a.png', 64, 64, 8, 16, 40, 48),
          ('sub/b.png', 48, 80, 40, 8, 72, 40),
          ('c.png', 64, 96, 0, 0, 48, 32)]
MEAN, STD = [0., 0., 0.], [255., 255., 255.]


class Brightness(torch.nn.Module):
    """A 'backbone' whose C5 heat map is the image brightness (8 x 8)."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (torch.nn.functional.adaptive_avg_pool2d(x, 8) + self.dummy,)


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def _data(tmp_path):
    img_dir = tmp_path / 'images'
    (img_dir / 'sub').mkdir(parents=True, exist_ok=True)
    images = []
    for k, (name, h, w, x1, y1, x2, y2) in enumerate(IMAGES):
        img = np.zeros((h, w, 3), np.uint8)
        img[y1:y2, x1:x2] = 255
        cv2.imwrite(str(img_dir / name), img)
        images.append(dict(id=k + 1, file_name=name, width=w, height=h))
    ann = tmp_path / 'image_info.json'  # images only: whole-image warm-up
    ann.write_text(json.dumps(dict(images=images, annotations=[])))
    ds = DATASETS.build(dict(
        type='ProposalImageDataset', ann_file=str(ann),
        data_prefix=dict(img_path=str(img_dir)),
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='LoadProposals', log_interval=0)]))
    return img_dir, ds


def _runner(tmp_path, loader):
    model = torch.nn.Module()
    model.backbone = Brightness()
    model.data_preprocessor = SimpleNamespace(
        mean=torch.tensor(MEAN).view(3, 1, 1),
        std=torch.tensor(STD).view(3, 1, 1), _channel_conversion=True)
    return SimpleNamespace(model=model, train_dataloader=loader, epoch=0,
                           work_dir=str(tmp_path / 'work'))


def _as_list(batch):
    return batch


def _samples(loader):
    out = {}
    for batch in loader:
        for r in batch:
            out[r['img_path']] = r
    return out


def _iou(a, b):
    ix = max(0., min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0., min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def test_refresh_writes_the_file_and_the_next_epoch_trains_on_it(tmp_path):
    img_dir, ds = _data(tmp_path)
    loader = torch.utils.data.DataLoader(
        RepeatDataset(ds, times=1), batch_size=2, num_workers=1,
        persistent_workers=True, collate_fn=_as_list)
    runner = _runner(tmp_path, loader)
    hook = HOOKS.build(dict(
        type='HeatmapProposalHook', interval=2, start_epoch=1, img_scale=64,
        generator=dict(num_boxes=1, thr=0.5, window=2., min_size=1)))
    hook.before_train(runner)
    # warm-up epoch: no box in the file, every image falls back
    before = _samples(loader)
    assert all(r['proposal_fallback'] for r in before.values())

    runner.model.backbone.train()
    hook.after_train_epoch(runner)  # end of epoch 1 = start_epoch
    assert runner.model.backbone.training  # mode restored
    out = tmp_path / 'work' / 'heatmap_proposals_epoch_1.json'
    assert ds.proposal_file == str(out)
    data = json.loads(out.read_text())
    assert data['info'] == dict(source='HeatmapProposalHook')
    assert [(im['file_name'], im['height'], im['width'])
            for im in data['images']] == [i[:3] for i in IMAGES]
    assert [a['image_id'] for a in data['annotations']] == [1, 2, 3]
    want = {}
    for (name, h, w, *rect), a in zip(IMAGES, data['annotations']):
        img = cv2.imread(str(img_dir / name))
        boxes = image_heatmap_boxes(runner.model.backbone, img,
                                    hook.generator, 64, MEAN, STD, True)
        assert boxes.shape == (1, 4)
        x1, y1, x2, y2 = boxes[0]
        np.testing.assert_allclose(a['bbox'], [x1, y1, x2 - x1, y2 - y1],
                                   atol=0.006)  # the file rounds to 1/100
        assert _iou(boxes[0], rect) > 0.6  # the bright rectangle
        want[str(img_dir / name)] = boxes
    # the next epoch (new persistent workers) trains on the heat-map boxes
    after = _samples(loader)
    assert set(after) == set(want)
    for path, r in after.items():
        assert not r['proposal_fallback'] and r['num_proposals'] == 1
        np.testing.assert_allclose(r['proposals'], want[path], atol=0.006)
    assert ds.proposal_stats['boxes'] == 3
    assert ds.proposal_stats['fallback'] == 0

    # interval 2: nothing at the end of epoch 2, a new file after epoch 3
    runner.epoch = 1
    hook.after_train_epoch(runner)
    assert not (tmp_path / 'work' / 'heatmap_proposals_epoch_2.json').exists()
    runner.epoch = 2
    hook.after_train_epoch(runner)
    assert ds.proposal_file.endswith('heatmap_proposals_epoch_3.json')


def test_needs_a_proposal_dataset(tmp_path):
    loader = SimpleNamespace(dataset=[1, 2, 3])
    hook = HOOKS.build(dict(type='HeatmapProposalHook'))
    with pytest.raises(TypeError, match='no ProposalImageDataset'):
        hook.before_train(_runner(tmp_path, loader))


def test_resume_goes_on_with_the_last_refresh(tmp_path, mm_logs):
    """Before: a run resumed after a refresh trained on the config's
    (whole-image) boxes until the next refresh."""
    _, ds = _data(tmp_path)
    runner = _runner(tmp_path, SimpleNamespace(dataset=ds))
    hook = HOOKS.build(dict(
        type='HeatmapProposalHook', interval=2, start_epoch=1, img_scale=64,
        generator=dict(num_boxes=1, thr=0.5, window=2., min_size=1)))
    runner.epoch = 0  # a new run: nothing to load
    hook.before_train(runner)
    assert ds.proposal_file is None
    # resumed after epoch 4: the last refresh was at the end of epoch 3,
    # its file is gone: drawn again, written under that name
    runner.epoch = 4
    hook.before_train(runner)
    path = tmp_path / 'work' / 'heatmap_proposals_epoch_3.json'
    assert ds.proposal_file == str(path)
    assert ds.proposal_stats['boxes'] == 3
    warned = [m for lvl, m in mm_logs if lvl == 30]  # the real print_log
    assert sum('was not found, drawn again' in m for m in warned) == 1
    # the file is there: it is loaded as it is (not recomputed)
    data = json.loads(path.read_text())
    data['annotations'] = data['annotations'][:1]
    path.write_text(json.dumps(data))
    _, ds2 = _data(tmp_path)
    runner.train_dataloader = SimpleNamespace(dataset=ds2)
    hook.before_train(runner)
    assert ds2.proposal_file == str(path)
    assert ds2.proposal_stats['boxes'] == 1


def test_the_hook_and_the_file_writer_draw_the_same_boxes(tmp_path):
    """One code path: a refresh writes exactly the images and boxes that
    write_heatmap_proposals (tools/heatmap_proposals.py) writes for the
    same backbone, generator and images."""
    from ccop_plugin.models.utils.heatmap_proposals import (
        UnreadableImageError,
    )
    from ccop_plugin.proposals.heatmap_file import write_heatmap_proposals
    from ccop_plugin.proposals.sources import ImageEntry
    img_dir, ds = _data(tmp_path)
    runner = _runner(tmp_path, SimpleNamespace(dataset=ds))
    hook = HOOKS.build(dict(
        type='HeatmapProposalHook', interval=1, start_epoch=1, img_scale=64,
        generator=dict(num_boxes=3, thr=0.3, window=1., min_size=1)))
    path = hook.refresh(runner, str(tmp_path / 'hook.json'))
    entries = [ImageEntry(k + 1, i[0]) for k, i in enumerate(IMAGES)]
    out = str(tmp_path / 'tool.json')
    write_heatmap_proposals(entries, str(img_dir), out,
                            runner.model.backbone, hook.generator, 64, MEAN,
                            STD, True)
    by_hook, by_tool = (json.loads(open(p).read()) for p in (path, out))
    assert by_hook['images'] == by_tool['images']
    assert by_hook['annotations'] == by_tool['annotations']
    assert len(by_hook['annotations']) > len(IMAGES)
    # an unreadable image is one error naming it, for both
    (img_dir / 'c.png').write_bytes(b'')
    for draw in (lambda: hook.refresh(runner, str(tmp_path / 'x.json')),
                 lambda: write_heatmap_proposals(
                     entries, str(img_dir), str(tmp_path / 'y.json'),
                     runner.model.backbone, hook.generator, 64)):
        with pytest.raises(UnreadableImageError, match='c.png: cannot read'):
            draw()
