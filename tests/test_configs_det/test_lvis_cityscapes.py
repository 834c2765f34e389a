"""LVIS v1 and Cityscapes: the repo's Mask R-CNN configs train 2 iterations
and evaluate on tiny generated data sets in the real on-disk layouts.

These need the optional evaluation packages that ``tools/setup_env.sh``
installs (``lvis``, ``cityscapesscripts``); without them the tests are skipped
with the reason (the unit test of the NumPy-2 fix runs regardless).
"""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO, 'configs/mask_rcnn')
LVIS_CFG = osp.join(
    CFG_DIR,
    'mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_sample1e-3_ms-1x_lvis-v1.py')
CITYSCAPES_CFG = osp.join(
    CFG_DIR, 'mask-rcnn_r50-ccop-pre_fpn-syncbn-4conv1fc_1x_cityscapes.py')

needs_lvis = pytest.mark.skipif(
    importlib.util.find_spec('lvis') is None,
    reason='lvis not installed (tools/setup_env.sh installs it)')
needs_cityscapes = pytest.mark.skipif(
    importlib.util.find_spec('cityscapesscripts') is None,
    reason='cityscapesscripts not installed (tools/setup_env.sh installs it)')


def _rect_poly(x, y, w, h):
    return [float(v) for v in (x, y, x + w, y, x + w, y + h, x, y + h)]


def write_tiny_lvis_v1(root, num_train=2, num_val=2, size=(96, 128)):
    """A tiny LVIS v1 set as the official release lays it out.

    ``root/train2017/*.jpg``, ``root/val2017/*.jpg`` and
    ``root/annotations/lvis_v1_{train,val}.json`` with all 1203 categories
    (names of mmdet's ``LVISV1Dataset``; frequency 'f'/'c'/'r',
    ``image_count``, ``instance_count``), images with ``coco_url``,
    ``neg_category_ids`` and ``not_exhaustive_category_ids``, annotations
    with polygon segmentations. Annotated categories: 1 ('f'), 2 ('c'),
    3 ('r').
    """
    import cv2
    from mmdet.datasets import LVISV1Dataset
    names = LVISV1Dataset.METAINFO['classes']
    rng = np.random.default_rng(0)
    h, w = size
    freq = {1: 'f', 2: 'c', 3: 'r'}
    img_id, ann_id = 0, 0
    (root / 'annotations').mkdir(parents=True)
    for split, num in (('train', num_train), ('val', num_val)):
        (root / f'{split}2017').mkdir()
        images, anns = [], []
        for _ in range(num):
            img_id += 1
            name = f'{img_id:012d}.jpg'
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            cv2.imwrite(str(root / f'{split}2017' / name), img)
            images.append(dict(
                id=img_id, width=w, height=h,
                coco_url=f'http://images.cocodataset.org/{split}2017/{name}',
                neg_category_ids=[4, 5], not_exhaustive_category_ids=[3]))
            for cat, (x, y, bw, bh) in zip(
                    (1, 2, 3), ((8, 8, 40, 30), (60, 20, 30, 50),
                                (20, 50, 50, 30))):
                ann_id += 1
                anns.append(dict(
                    id=ann_id, image_id=img_id, category_id=cat,
                    bbox=[x, y, bw, bh], area=float(bw * bh),
                    segmentation=[_rect_poly(x, y, bw, bh)]))
        cats = [dict(id=i + 1, name=n, synset=f'{n}.n.01',
                     synonyms=[n], def_='', frequency=freq.get(i + 1, 'f'),
                     image_count=num if i < 3 else 0,
                     instance_count=num if i < 3 else 0)
                for i, n in enumerate(names)]
        with open(root / 'annotations' / f'lvis_v1_{split}.json', 'w') as f:
            json.dump(dict(info={}, licenses=[], images=images,
                           annotations=anns, categories=cats), f)


def write_tiny_cityscapes(root, size=(64, 128), per_split=2):
    """A tiny Cityscapes set as the official release lays it out, plus the
    COCO-style jsons written by mmdet's own converter
    (``tools/dataset_converters/cityscapes.py``, loaded from the installed
    mmdet): ``leftImg8bit/{train,val}/tinycity/*_leftImg8bit.png``,
    ``gtFine/{train,val}/tinycity/*_gtFine_{instanceIds,labelIds}.png``,
    ``annotations/instancesonly_filtered_gtFine_{train,val}.json``."""
    import cv2
    import mmdet
    conv_path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools',
                         'dataset_converters', 'cityscapes.py')
    spec = importlib.util.spec_from_file_location('mmdet_cs_conv', conv_path)
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)
    rng = np.random.default_rng(0)
    h, w = size
    # (label id, box x, y, w, h): person 24, car 26, bicycle 33
    objects = ((24, 10, 10, 20, 40), (26, 40, 20, 50, 30),
               (33, 95, 25, 25, 25))
    (root / 'annotations').mkdir(parents=True)
    for split in ('train', 'val'):
        img_dir = root / 'leftImg8bit' / split / 'tinycity'
        gt_dir = root / 'gtFine' / split / 'tinycity'
        img_dir.mkdir(parents=True)
        gt_dir.mkdir(parents=True)
        for i in range(per_split):
            stem = f'tinycity_{i:06d}_000019'
            img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            label_ids = np.full((h, w), 7, np.uint8)  # road
            inst_ids = label_ids.astype(np.uint16)
            for k, (label, x, y, bw, bh) in enumerate(objects):
                img[y:y + bh, x:x + bw] = 40 * (k + 2)
                label_ids[y:y + bh, x:x + bw] = label
                inst_ids[y:y + bh, x:x + bw] = label * 1000 + k
            cv2.imwrite(str(img_dir / f'{stem}_leftImg8bit.png'), img)
            cv2.imwrite(str(gt_dir / f'{stem}_gtFine_labelIds.png'), label_ids)
            cv2.imwrite(str(gt_dir / f'{stem}_gtFine_instanceIds.png'),
                        inst_ids)
        files = conv.collect_files(str(root / 'leftImg8bit' / split),
                                   str(root / 'gtFine' / split))
        conv.cvt_annotations(
            conv.collect_annotations(files),
            str(root / 'annotations' /
                f'instancesonly_filtered_gtFine_{split}.json'))


# no R50 checkpoint (with optimizer state) to write after the 2 iterations
NO_CKPT = {'default_hooks.checkpoint': None}


def _small(cfg, train_scale, test_scale):
    """Tiny images, single-process loaders, no checkpoint to load."""
    cfg.model.init_cfg = None
    cfg.model.backbone.init_cfg = None
    cfg.load_from = None
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].num_workers = 0
        cfg[name].persistent_workers = False
        cfg[name].batch_size = 2
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:
        ds = ds.dataset
    for t in ds.pipeline:
        if t.type in ('RandomChoiceResize', 'RandomResize'):
            t.type, t.scale, t.keep_ratio = 'Resize', train_scale, True
            t.pop('scales', None)
    for name in ('val_dataloader', 'test_dataloader'):
        for t in cfg[name].dataset.pipeline:
            if t.type == 'Resize':
                t.scale = test_scale
    cfg.default_hooks.logger.interval = 1
    # few RoIs: the 4conv1fc box head costs 15 GMACs per 128 RoIs, and more
    # than 10000 boxes (8 proposals x 1203 LVIS classes) make mmcv's NMS
    # loop over the classes in Python; both take minutes on 2 CPU cores
    cfg.model.train_cfg.rpn_proposal.max_per_img = 100
    cfg.model.train_cfg.rcnn.sampler.num = 16
    cfg.model.test_cfg.rpn.max_per_img = 8
    cfg.model.test_cfg.rcnn.max_per_img = 20


def test_lvis_numpy2_patch_is_local_to_lvis_eval(monkeypatch):
    """``np.float`` exists for ``lvis.eval`` only (a stand-in module is used
    when lvis is not installed)."""
    import sys
    import types

    from ccop_plugin.utils import lvis_compat
    if hasattr(np, 'float'):
        pytest.skip('NumPy < 1.24 still has np.float')
    if importlib.util.find_spec('lvis') is None:
        fake = types.ModuleType('lvis')
        fake.__path__ = []
        fake.__spec__ = importlib.util.spec_from_loader('lvis', loader=None)
        fake_eval = types.ModuleType('lvis.eval')
        fake_eval.np = np
        fake.eval = fake_eval
        monkeypatch.setitem(sys.modules, 'lvis', fake)
        monkeypatch.setitem(sys.modules, 'lvis.eval', fake_eval)
    import lvis.eval as lvis_eval
    lvis_compat.patch_lvis_numpy2()
    assert not hasattr(np, 'float')  # NumPy itself is untouched
    assert lvis_eval.np.float is float
    assert lvis_eval.np.cumsum is np.cumsum
    x = np.cumsum(np.array([[True, False, True]]), axis=1)
    np.testing.assert_array_equal(
        x.astype(dtype=lvis_eval.np.float), [[1., 1., 2.]])
    assert x.astype(dtype=lvis_eval.np.float).dtype == np.float64
    assert lvis_compat.patch_lvis_numpy2() is False  # idempotent


@needs_lvis
def test_lvis_accumulate_runs_under_numpy2(tmp_path):
    """LVISEval on a hand-made result: perfect boxes give AP 1 in every
    frequency group (before the patch: AttributeError, numpy has no
    attribute 'float')."""
    from lvis import LVIS, LVISEval, LVISResults

    import ccop_plugin  # noqa: F401  (applies the patch)
    write_tiny_lvis_v1(tmp_path, num_train=0, num_val=2)
    gt = LVIS(str(tmp_path / 'annotations' / 'lvis_v1_val.json'))
    dets = [dict(image_id=a['image_id'], category_id=a['category_id'],
                 bbox=a['bbox'], score=0.9)
            for a in gt.dataset['annotations']]
    ev = LVISEval(gt, LVISResults(gt, dets), 'bbox')
    ev.run()
    res = ev.get_results()
    for key in ('AP', 'APf', 'APc', 'APr'):
        assert res[key] == pytest.approx(1.0), key
    # a wrong class for every detection: AP 0, not an error
    wrong = [dict(d, category_id=4) for d in dets]
    ev = LVISEval(gt, LVISResults(gt, wrong), 'bbox')
    ev.run()
    assert ev.get_results()['AP'] == pytest.approx(0.0)


@pytest.mark.e2e
@needs_lvis
def test_lvis_v1_config_trains_and_evaluates(tmp_path):
    """The repo's LVIS v1 config (1203 classes, class-balanced sampling,
    SyncBN reverted in one process): 2 iterations, then LVIS bbox + segm
    evaluation with the real LVIS API."""
    from ccop_plugin.apis import finetune_detector
    data = tmp_path / 'lvis_v1'
    write_tiny_lvis_v1(data)
    cfg = Config.fromfile(LVIS_CFG)
    _small(cfg, (128, 96), (128, 96))
    metrics = finetune_detector(cfg, str(tmp_path / 'work'),
                                data_root=str(data), max_iters=2,
                                cfg_options=NO_CKPT)
    for metric in ('bbox', 'segm'):
        for k in ('AP', 'AP50', 'APr', 'APc', 'APf'):
            key = f'lvis/{metric}_{k}'
            assert key in metrics, sorted(metrics)
            assert -1.0 <= metrics[key] <= 1.0  # LVIS reports -1 if no GT


@pytest.mark.e2e
@needs_cityscapes
def test_cityscapes_config_trains_and_evaluates(tmp_path):
    """The repo's Cityscapes config: 2 iterations, then both of its metrics,
    COCO-style bbox/segm AP and the official Cityscapes instance AP."""
    from ccop_plugin.apis import finetune_detector
    data = tmp_path / 'cityscapes'
    write_tiny_cityscapes(data)
    ann = json.load(open(data / 'annotations' /
                         'instancesonly_filtered_gtFine_val.json'))
    assert {c['name'] for c in ann['categories']} >= {'person', 'car',
                                                      'bicycle'}
    assert len(ann['annotations']) == 6
    cfg = Config.fromfile(CITYSCAPES_CFG)
    _small(cfg, (128, 64), (128, 64))
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cs_metric = [e for e in cfg.val_evaluator
                 if e.type == 'CityScapesMetric'][0]
    cs_metric.seg_prefix = str(data / 'gtFine' / 'val')
    cs_metric.outfile_prefix = str(tmp_path / 'cs_results')
    metrics = finetune_detector(cfg, str(tmp_path / 'work'),
                                data_root=str(data), max_iters=2,
                                cfg_options=NO_CKPT)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP', 'coco/bbox_mAP_50'):
        assert key in metrics and 0.0 <= metrics[key] <= 1.0, sorted(metrics)
    for key in ('cityscapes/mAP', 'cityscapes/AP@50'):
        assert key in metrics, sorted(metrics)
        assert 0.0 <= metrics[key] <= 1.0
