"""Synthetic COCO shapes: determinism, mask/box agreement, file layout."""
import filecmp
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ccop_plugin.datagen import (CLASSES, SceneConfig,
                                 generate_synthetic_coco, image_rng,
                                 render_scene)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(num_unlabeled=4, num_train=6, num_val=3, img_size=96)


def _all_files(root):
    out = []
    for d, _, files in os.walk(root):
        out += [osp.relpath(osp.join(d, f), root) for f in files]
    return sorted(out)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synth') / 'a')
    meta = generate_synthetic_coco(root, seed=3, **SMALL)
    return root, meta


def test_layout_and_counts(dataset):
    root, meta = dataset
    assert meta['classes'] == list(CLASSES)
    unl = json.load(open(osp.join(root, 'annotations/unlabeled.json')))
    assert len(unl['images']) == 4 and unl['annotations'] == []
    for split, n in (('train', 6), ('val', 3)):
        coco = json.load(
            open(osp.join(root, f'annotations/instances_{split}.json')))
        assert len(coco['images']) == n
        assert [c['name'] for c in coco['categories']] == list(CLASSES)
        assert [c['id'] for c in coco['categories']] == [1, 2, 3, 4, 5, 6]
        assert len(coco['annotations']) >= n  # >= 1 object per image
        for img in coco['images']:
            assert osp.isfile(osp.join(root, 'images', split,
                                       img['file_name']))
            assert (img['width'], img['height']) == (96, 96)


def test_masks_and_boxes_agree(dataset):
    root, _ = dataset
    coco = json.load(open(osp.join(root, 'annotations/instances_train.json')))
    per_image = {}
    for ann in coco['annotations']:
        m = mask_utils.decode(ann['segmentation'])
        assert m.shape == (96, 96)
        ys, xs = np.nonzero(m)
        box = [xs.min(), ys.min(), xs.max() - xs.min() + 1,
               ys.max() - ys.min() + 1]
        np.testing.assert_allclose(ann['bbox'], box)
        assert ann['area'] == m.sum() > 0
        assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= 6
        per_image.setdefault(ann['image_id'], []).append(m)
    # visible masks of one image never overlap (occluded parts removed)
    for masks in per_image.values():
        assert np.stack(masks).sum(0).max() == 1


def test_deterministic_by_seed(tmp_path, dataset):
    root, _ = dataset
    again = str(tmp_path / 'b')
    generate_synthetic_coco(again, seed=3, **SMALL)
    files = _all_files(root)
    assert files == _all_files(again)
    match, mismatch, errors = filecmp.cmpfiles(root, again, files,
                                               shallow=False)
    assert not mismatch and not errors
    other = str(tmp_path / 'c')
    generate_synthetic_coco(other, seed=4, **SMALL)
    assert not filecmp.cmp(osp.join(root, 'images/train/000001.png'),
                           osp.join(other, 'images/train/000001.png'),
                           shallow=False)


def test_render_scene_pure_and_independent_of_split_size():
    cfg = SceneConfig(height=64, width=80)
    img1, inst1 = render_scene(image_rng(0, 'train', 5), cfg)
    img2, inst2 = render_scene(image_rng(0, 'train', 5), cfg)
    assert img1.shape == (64, 80, 3) and img1.dtype == np.uint8
    np.testing.assert_array_equal(img1, img2)
    assert [lab for lab, _ in inst1] == [lab for lab, _ in inst2]
    for (_, a), (_, b) in zip(inst1, inst2):
        np.testing.assert_array_equal(a, b)
    img3, _ = render_scene(image_rng(0, 'val', 5), cfg)
    assert not np.array_equal(img1, img3)


def test_occlusion_drops_mostly_hidden():
    """Same drawings (same streams); only the visibility rule differs."""
    kw = dict(height=64, width=64, min_objects=5, max_objects=6, min_area=1)
    strict = SceneConfig(min_visible=0.999, **kw)
    loose = SceneConfig(min_visible=0.0, **kw)
    n_strict = n_loose = 0
    for i in range(20):
        img_s, inst_s = render_scene(image_rng(1, 'train', i), strict)
        img_l, inst_l = render_scene(image_rng(1, 'train', i), loose)
        np.testing.assert_array_equal(img_s, img_l)
        n_strict += len(inst_s)
        n_loose += len(inst_l)
        # the last painted object is never occluded
        assert inst_s and np.array_equal(inst_s[-1][1], inst_l[-1][1])
    assert n_strict < n_loose


def test_skip_when_complete_and_mismatch(tmp_path):
    root = str(tmp_path / 'd')
    first = generate_synthetic_coco(root, seed=0, **SMALL)
    assert not first['skipped']
    mtime = os.stat(osp.join(root, 'images/train/000001.png')).st_mtime_ns
    second = generate_synthetic_coco(root, seed=0, **SMALL)
    assert second['skipped']
    assert os.stat(osp.join(root, 'images/train/000001.png')
                   ).st_mtime_ns == mtime
    with pytest.raises(FileExistsError, match='other parameters'):
        generate_synthetic_coco(root, seed=1, **SMALL)
    # an incomplete dataset (missing image) is regenerated
    os.remove(osp.join(root, 'images/val/000002.png'))
    third = generate_synthetic_coco(root, seed=0, **SMALL)
    assert not third['skipped']
    assert osp.isfile(osp.join(root, 'images/val/000002.png'))
    assert not [f for f in _all_files(root) if f.endswith('.tmp')]
    # overwriting with fewer images leaves no stale files behind
    generate_synthetic_coco(root, seed=0, overwrite=True,
                            **dict(SMALL, num_unlabeled=2))
    assert sorted(os.listdir(osp.join(root, 'images/unlabeled'))) == [
        '000001.png', '000002.png']


def test_bad_parameters():
    with pytest.raises(ValueError, match='unknown or no classes'):
        SceneConfig(classes=('hexagon', ))
    with pytest.raises(ValueError, match='min_objects'):
        SceneConfig(min_objects=3, max_objects=2)


def _tool(name):
    path = osp.join(REPO, 'tools', name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli(tmp_path, capsys):
    out = str(tmp_path / 'cli')
    argv = ['--out', out, '--seed', '1', '--num-unlabeled', '2',
            '--num-train', '2', '--num-val', '1', '--img-size', '64',
            '--classes', 'circle', 'star']
    main = _tool('generate_dataset.py').main
    assert main(argv) == 0
    meta = json.load(open(osp.join(out, 'meta.json')))
    assert meta['classes'] == ['circle', 'star']
    assert main(argv[:-2] + ['cross']) == 1
    assert 'other parameters' in capsys.readouterr().err


def test_cli_subprocess(tmp_path):
    r = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/generate_dataset.py'),
         '--out', str(tmp_path / 'x'), '--num-unlabeled', '1',
         '--num-train', '1', '--num-val', '1', '--img-size', '32'],
        capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert 'train: 1 images' in r.stdout
