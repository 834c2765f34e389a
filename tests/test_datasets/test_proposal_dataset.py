import json

import cv2
import numpy as np
import pytest

from mmengine.registry import DefaultScope

import ccop_plugin  # noqa: F401
from mmpretrain.registry import DATASETS


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def _make(tmp_path, with_annotations=True):
    img_dir = tmp_path / 'images'
    (img_dir / 'sub').mkdir(parents=True)
    names = ['a.png', 'sub/b.png', 'c.png']
    for n in names:
        img = np.random.default_rng(0).integers(0, 255, (60, 80, 3))
        cv2.imwrite(str(img_dir / n), img.astype(np.uint8))
    images = [dict(id=i + 1, file_name=n, width=80, height=60)
              for i, n in enumerate(names)]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[5, 5, 30, 20]),
            dict(id=2, image_id=2, category_id=1, bbox=[10, 10, 40, 40])]
    coco = dict(images=images, annotations=anns if with_annotations else [],
                categories=[dict(id=1, name='proposal')])
    path = tmp_path / 'proposals.json'
    path.write_text(json.dumps(coco))
    return img_dir, path


PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadProposals'),
    dict(type='BoxAwareMultiView', size=32, scale=(0.8, 1.0), part_thr=0.5,
         area_thr=None),
    dict(type='PackBoxSelfSupInputs'),
]


def test_from_coco_json(tmp_path):
    img_dir, path = _make(tmp_path)
    ds = DATASETS.build(dict(type='ProposalImageDataset', data_root=str(
        tmp_path), ann_file='proposals.json',
        data_prefix=dict(img_path='images'), pipeline=PIPELINE))
    assert len(ds) == 3
    info = ds.get_data_info(1)
    assert info['img_path'].endswith('images/sub/b.png')
    np.testing.assert_allclose(info['proposals_xywh'], [[10, 10, 40, 40]])
    assert ds.get_data_info(2)['proposals_xywh'].shape == (0, 4)
    out = ds[0]
    assert out['data_samples'].view_bboxes.shape[0] == 2
    assert ds[2]['data_samples'].proposal_fallback  # c.png: whole image


def test_from_image_folder_with_proposal_file(tmp_path):
    img_dir, path = _make(tmp_path)
    ds = DATASETS.build(dict(type='ProposalImageDataset', ann_file='',
                             proposal_file=str(path),
                             data_prefix=dict(img_path=str(img_dir)),
                             pipeline=PIPELINE))
    assert [d['img_path'][len(str(img_dir)) + 1:] for d in ds.load_data_list()
            ] == ['a.png', 'c.png', 'sub/b.png']
    assert ds[0]['inputs'][0].shape == (3, 32, 32)


def test_malformed_json_error_names_the_file(tmp_path):
    bad = tmp_path / 'broken.json'
    bad.write_text('{"images": 3}')
    with pytest.raises(ValueError, match='broken.json'):
        DATASETS.build(dict(type='ProposalImageDataset',
                            ann_file=str(bad), pipeline=[]))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        DATASETS.build(dict(type='ProposalImageDataset',
                            ann_file=str(tmp_path / 'missing.json'),
                            pipeline=[]))
