"""The fine-tuning config takes its classes and heads from the train file:
a category subset with arbitrary ids and names trains and evaluates."""
import json
import os.path as osp

import pytest

from ccop_plugin.apis.finetune import build_finetune_cfg
from ccop_plugin.apis.label_space import apply_label_space, file_classes
from ccop_plugin.apis.methods import FINETUNE_CONFIG
from ccop_plugin.utils.config_path import get_config_path

# a user's subset: ids neither from 1 nor contiguous, listed out of id order
SUBSET = [dict(id=42, name='bolt'), dict(id=7, name='nut'),
          dict(id=3, name='washer'), dict(id=11, name='spring')]


def _write(root, name, cats):
    path = osp.join(root, 'annotations', name)
    import os
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(dict(images=[], annotations=[], categories=cats), f)
    return path


def _cfg(tmp_path, val_cats=SUBSET):
    root = str(tmp_path)
    _write(root, 'instances_train.json', SUBSET)
    _write(root, 'instances_val.json', val_cats)
    return build_finetune_cfg(get_config_path(FINETUNE_CONFIG),
                              str(tmp_path / 'work'), data_root=root)


def test_a_category_subset_sets_classes_and_heads(tmp_path):
    cfg = _cfg(tmp_path)
    names = ('bolt', 'nut', 'washer', 'spring')  # the file's order
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert tuple(cfg[loader].dataset.metainfo['classes']) == names
    assert cfg.model.roi_head.bbox_head.num_classes == 4
    assert cfg.model.roi_head.mask_head.num_classes == 4


def test_the_synthetic_config_is_left_as_it_is(tmp_path):
    from ccop_plugin.datagen import CLASSES
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    root = str(tmp_path)
    _write(root, 'instances_train.json', cats)
    _write(root, 'instances_val.json', cats)
    cfg = build_finetune_cfg(get_config_path(FINETUNE_CONFIG),
                             str(tmp_path / 'w'), data_root=root)
    meta = cfg.train_dataloader.dataset.metainfo
    assert tuple(meta['classes']) == tuple(CLASSES) and 'palette' in meta
    assert cfg.model.roi_head.bbox_head.num_classes == len(CLASSES)


def test_a_val_file_in_another_order_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match='instances_val.json: its categories'
                       ' do not match .*another order'):
        _cfg(tmp_path, val_cats=SUBSET[::-1])
    with pytest.raises(ValueError, match=r'missing: spring'):
        _cfg(tmp_path, val_cats=SUBSET[:3])


def test_config_classes_select_from_the_file(tmp_path):
    root = str(tmp_path)
    ann = _write(root, 'instances_train.json', SUBSET)
    assert file_classes(ann, ['spring', 'bolt']) == ['bolt', 'spring']
    from mmengine.config import Config
    cfg = Config.fromfile(get_config_path(FINETUNE_CONFIG))
    cfg.train_dataloader.dataset.data_root = root + '/'
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.ann_file = 'none.json'
    cfg.train_dataloader.dataset.metainfo = dict(classes=('spring', 'nut',
                                                          'circle'))
    assert apply_label_space(cfg) == ['nut', 'spring']
    assert cfg.model.roi_head.bbox_head.num_classes == 2


def test_bad_categories_name_the_file(tmp_path):
    root = str(tmp_path)
    bad = _write(root, 'bad.json', [dict(id=1, name='a'), dict(id=1,
                                                               name='b')])
    with pytest.raises(ValueError, match='bad.json: category id 1 is listed'
                       ' twice'):
        file_classes(bad)
