import json

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS

import ccop_plugin  # noqa: F401


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


def test_dataloader_batch_with_mixed_box_counts(tmp_path):
    """default_collate through a DataLoader: N = 2, 1 and 0 per image."""
    import torch
    from mmengine.dataset import default_collate
    img_dir, _ = _make(tmp_path)
    images = [dict(id=i + 1, file_name=n, width=80, height=60)
              for i, n in enumerate(['a.png', 'sub/b.png', 'c.png'])]
    anns = [dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 80, 60]),
            dict(id=2, image_id=1, category_id=1, bbox=[2, 2, 76, 56]),
            dict(id=3, image_id=2, category_id=1, bbox=[0, 0, 80, 60]),
            # image 3: a box that can never keep 60% of itself in the crop
            dict(id=4, image_id=3, category_id=1, bbox=[0, 0, 80, 60])]
    path = tmp_path / 'mixed.json'
    path.write_text(json.dumps(dict(images=images, annotations=anns,
                                    categories=[dict(id=1, name='p')])))
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadProposals'),
        dict(type='BoxAwareMultiView', size=32, scale=(0.9, 1.0),
             ratio=(4. / 3., 4. / 3.), part_thr=0.5, area_thr=None),
        dict(type='PackBoxSelfSupInputs'),
    ]
    ds = DATASETS.build(dict(type='ProposalImageDataset', ann_file=str(path),
                             data_prefix=dict(img_path=str(img_dir)),
                             pipeline=pipeline))
    # image 3 drops its box: a threshold above 1 for that call only
    batch_items = [ds[0], ds[1]]
    ds.pipeline.transforms[2].part_thr = 1.5
    batch_items.append(ds[2])
    loader = torch.utils.data.DataLoader(
        batch_items, batch_size=3, collate_fn=default_collate)
    batch = next(iter(loader))
    assert [t.shape for t in batch['inputs']] == [(3, 3, 32, 32)] * 2
    shapes = [tuple(s.view_bboxes.shape) for s in batch['data_samples']]
    assert shapes == [(2, 2, 4), (2, 1, 4), (2, 0, 4)]
    assert all(s.view_bboxes.dtype == torch.float32
               for s in batch['data_samples'])
    assert batch['data_samples'][0].num_proposals == 2
    assert batch['data_samples'][1].img_path.endswith('sub/b.png')
    assert batch['data_samples'][2].ori_shape == (60, 80)


def test_labelled_ann_file_is_refused_as_proposals_and_usable_as_image_list(
        tmp_path):
    """A COCO annotation file (several categories) is ground truth: taking
    its boxes as proposals would leak labels into pre-training."""
    img_dir, path = _make(tmp_path)
    coco = json.loads(path.read_text())
    coco['annotations'][1]['category_id'] = 7
    coco['categories'].append(dict(id=7, name='dog'))
    gt = tmp_path / 'instances_train.json'
    gt.write_text(json.dumps(coco))
    kw = dict(type='ProposalImageDataset', ann_file=str(gt),
              data_prefix=dict(img_path=str(img_dir)), pipeline=[])
    with pytest.raises(ValueError, match=r'instances_train\.json.*labelled'):
        DATASETS.build(kw)
    ds = DATASETS.build(dict(kw, proposals_from_ann_file=False))
    assert len(ds) == 3
    assert all(ds.get_data_info(i)['proposals_xywh'].shape == (0, 4)
               for i in range(3))
    assert ds.proposal_stats['fallback'] == 3
    # a proposal file given next to it is used, and the labels never read
    ds = DATASETS.build(dict(kw, proposal_file=str(path)))
    assert ds.get_data_info(0)['proposals_xywh'].tolist() == [[5, 5, 30, 20]]
    # the heat-map hook fills an image-list dataset later
    ds = DATASETS.build(dict(kw, proposals_from_ann_file=False))
    ds.load_proposals(str(path))
    assert ds.get_data_info(1)['proposals_xywh'].tolist() == [
        [10, 10, 40, 40]]


def test_no_training_images_is_one_clear_error(tmp_path):
    """A proposal file listing no image (e.g. every image failed in the
    proposal tool) stops at build time naming the file, not deep inside
    mmengine's serialisation."""
    img_dir, _ = _make(tmp_path)
    empty = tmp_path / 'empty_proposals.json'
    empty.write_text(json.dumps(dict(images=[], annotations=[],
                                     categories=[dict(id=1, name='p')])))
    with pytest.raises(ValueError,
                       match=r'empty_proposals\.json: no training images'):
        DATASETS.build(dict(type='ProposalImageDataset', ann_file=str(empty),
                            data_prefix=dict(img_path=str(img_dir)),
                            pipeline=[]))
