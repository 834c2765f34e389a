"""LoadProposals and the proposal boxes it reads."""
import json

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile

import ccop_plugin  # noqa: F401
from ccop_plugin.datasets import ProposalImageDataset
from ccop_plugin.datasets.transforms import (
    LoadProposals,
)
from ccop_plugin.proposals.proposal_file import (
    read_proposal_file,
    sanitize_boxes,
)


def _write_proposals(path, images, boxes_by_id):
    anns = []
    for img_id, boxes in boxes_by_id.items():
        for b in boxes:
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=1,
                             bbox=list(map(float, b)), iscrowd=0,
                             area=float(b[2] * b[3])))
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='proposal')]), f)


def test_sanitize_drops_clips_and_caps():
    boxes = np.array([
        [10, 10, 50, 50],  # fine
        [np.nan, 0, 5, 5],  # non-finite
        [20, 20, 20, 40],  # zero width
        [30, 30, 10, 40],  # negative width
        [200, 200, 300, 300],  # entirely outside (image 100x120)
        [-10, -5, 40, 500],  # clipped
    ], np.float32)
    out, dropped = sanitize_boxes(boxes, (100, 120), max_num=10)
    assert dropped == 4
    np.testing.assert_allclose(out, [[10, 10, 50, 50], [0, 0, 40, 100]])
    out, dropped = sanitize_boxes(boxes, (100, 120), max_num=1)
    assert len(out) == 1 and dropped == 4


def _proposal_images(tmp_path):
    """Two 100 x 120 images (``sub/a.jpg``, ``b.jpg``) and their file."""
    img_dir = tmp_path / 'images'
    (img_dir / 'sub').mkdir(parents=True)
    for name in ('sub/a.jpg', 'b.jpg'):
        cv2.imwrite(str(img_dir / name), np.zeros((100, 120, 3), np.uint8))
    path = tmp_path / 'p.json'
    _write_proposals(path, [dict(id=1, file_name='sub/a.jpg', width=120,
                                 height=100),
                            dict(id=2, file_name='b.jpg', width=120,
                                 height=100)],
                     {1: [[10, 10, 20, 30], [0, 0, -1, 5]]})
    return img_dir, path


def test_load_proposals_from_field_and_file(tmp_path):
    """The dataset puts the file's boxes into each sample; LoadProposals
    sanitises them."""
    img_dir, path = _proposal_images(tmp_path)
    t = LoadProposals(log_interval=0)
    ds = ProposalImageDataset(ann_file=str(path),
                              data_prefix=dict(img_path=str(img_dir)),
                              pipeline=[LoadImageFromFile(), t])
    r = ds[0]
    assert r['img_path'].endswith('sub/a.jpg')
    np.testing.assert_allclose(r['proposals_xywh'],
                               [[10, 10, 20, 30], [0, 0, -1, 5]])
    np.testing.assert_allclose(r['proposals'], [[10, 10, 30, 40]])
    assert r['num_dropped_proposals'] == 1 and not r['proposal_fallback']
    # no valid proposal: whole image, counted
    r = ds[1]
    np.testing.assert_allclose(r['proposals'], [[0, 0, 120, 100]])
    assert r['proposal_fallback']
    assert t.stats == dict(images=2, kept=2, dropped=1, fallback=1)
    # a sample without proposals (no ProposalImageDataset) names the image
    with pytest.raises(KeyError, match='c.jpg'):
        t(dict(img_path='/x/c.jpg', img_shape=(100, 120)))
    # per-image field (as ProposalImageDataset provides)
    r = LoadProposals(max_num=1)(dict(
        img_path='a.jpg', img_shape=(100, 120),
        proposals_xywh=np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)))
    np.testing.assert_allclose(r['proposals'], [[1, 2, 4, 6]])


def test_load_proposals_no_longer_takes_a_file():
    with pytest.raises(ValueError, match='set proposal_file on the dataset'):
        LoadProposals(proposal_file='p.json')
    with pytest.raises(ValueError, match='max_num must be >= 1'):
        LoadProposals(max_num=0)
    assert repr(LoadProposals(max_num=7, log_interval=0)) == \
        'LoadProposals(max_num=7, log_interval=0)'


def test_malformed_proposal_file_names_the_file(tmp_path):
    img_dir, _ = _proposal_images(tmp_path)
    bad = tmp_path / 'bad.json'
    bad.write_text('{"images": [')
    with pytest.raises(ValueError, match='bad.json'):
        read_proposal_file(str(bad))
    bad.write_text('[1, 2]')
    for kw in (dict(ann_file=str(bad)),
               dict(ann_file='', proposal_file=str(bad))):
        with pytest.raises(ValueError, match='bad.json'):
            ProposalImageDataset(data_prefix=dict(img_path=str(img_dir)),
                                 **kw)
