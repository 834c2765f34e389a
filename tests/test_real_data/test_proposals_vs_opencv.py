"""Proposals of ``tools/selective_search.py`` on real photographs against a
direct OpenCV selective-search call with the ``ccop`` preset's filters.

The reference side is written out here without the plugin's code: OpenCV
``ximgproc`` in fast mode, the aspect and size filter, the per-image random
scores (seeded from the file name), a plain greedy NMS loop and the top-k.
"""
import hashlib
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from coco_commands import PHOTOS, REPO

from ccop_plugin.proposals import PRESETS

PHOTO_FILES = sorted(str(p.relative_to(PHOTOS))
                     for p in PHOTOS.rglob('*.jpg'))


def test_ccop_preset_is_the_reference_recipe():
    p = PRESETS['ccop']
    assert (p['mode'], p['filter'], p['min_aspect'], p['max_aspect'],
            p['min_side'], p['nms_iou'], p['max_num']) == \
        ('fast', 'ccop', 1 / 3, 3.0, 20.0, 0.5, 50)
    assert len(PHOTO_FILES) == 6


def direct_opencv(path, file_name, preset, seed=0):
    """Selective search as the CCOP reference script does it, in NumPy."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(img)
    assert preset['mode'] == 'fast'
    ss.switchToSelectiveSearchFast()
    xywh = np.asarray(ss.process(), dtype=np.float64).reshape(-1, 4)
    w, h = xywh[:, 2], xywh[:, 3]
    keep = ((w / h > preset['min_aspect']) & (w / h < preset['max_aspect'])
            & (np.sqrt(w * h) > preset['min_side']))
    boxes = sorted(tuple(b) for b in xywh[keep])  # OpenCV's order is random
    boxes = np.array(boxes).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]  # xyxy
    digest = hashlib.sha256(f'{seed}:{file_name}'.encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], 'little'))
    scores = rng.uniform(0.01, 1.0, size=len(boxes)).astype(np.float32)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    for i in np.argsort(-scores, kind='stable'):
        if kept:
            k = np.array(kept)
            iw = (np.minimum(boxes[k, 2], boxes[i, 2])
                  - np.maximum(boxes[k, 0], boxes[i, 0])).clip(0)
            ih = (np.minimum(boxes[k, 3], boxes[i, 3])
                  - np.maximum(boxes[k, 1], boxes[i, 1])).clip(0)
            inter = iw * ih
            if (inter / (area[k] + area[i] - inter) > preset['nms_iou']).any():
                continue
        kept.append(i)
        if len(kept) == preset['max_num']:
            break
    out = boxes[kept]
    out[:, 2:] -= out[:, :2]
    return out, int(keep.sum())


@pytest.fixture(scope='module')
def tool_output(tmp_path_factory):
    out = tmp_path_factory.mktemp('ss') / 'proposals.json'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get('PYTHONPATH')) if p))
    r = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'selective_search.py'),
         str(PHOTOS), '--out', str(out), '--workers', '1', '--no-progress'],
        env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_tool_output_equals_direct_opencv(tool_output):
    preset = PRESETS['ccop']
    names = {im['id']: im['file_name'] for im in tool_output['images']}
    assert sorted(names.values()) == PHOTO_FILES
    got = {n: [] for n in names.values()}
    for a in tool_output['annotations']:
        got[names[a['image_id']]].append(a['bbox'])
    capped = 0
    for name in PHOTO_FILES:
        ref, n_filtered = direct_opencv(str(PHOTOS / name), name, preset)
        assert 0 < len(ref) <= min(n_filtered, preset['max_num']), name
        capped += len(ref) == preset['max_num']
        # same boxes, same (score) order
        np.testing.assert_array_equal(np.array(got[name]).reshape(-1, 4),
                                      ref, err_msg=name)
    # the top-k cut matters on most photos (the blurred clock has fewer)
    assert capped >= 4
