"""COCO configs name files of the documented COCO layout.

COCO 2017 ships ``annotations/instances_{train,val}2017.json``,
``annotations/image_info_test2017.json`` and
``annotations/image_info_unlabeled2017.json`` (no ``image_info_train2017``);
the README's step 1 (``docs/commands/coco_pretrain.sh``) writes
``proposals/selective_search_train2017.json``. A config naming any other file
under ``data/coco`` fails at start on a correct COCO download.
"""
import os.path as osp

import pytest

from .test_config_resolution import CONFIGS, REPO, resolve

COCO_FILES = {
    'annotations/instances_train2017.json',
    'annotations/instances_val2017.json',
    'annotations/image_info_test2017.json',
    'annotations/image_info_unlabeled2017.json',
    'proposals/selective_search_train2017.json',
}


def _datasets(node):
    """Every dict with a ``data_root`` (a dataset config), nested."""
    if isinstance(node, dict):
        if 'data_root' in node and isinstance(node['data_root'], str):
            yield node
        for v in node.values():
            yield from _datasets(v)
    elif isinstance(node, list):
        for v in node:
            yield from _datasets(v)


def test_readme_commands_write_the_proposal_file():
    with open(osp.join(REPO, 'docs/commands/coco_pretrain.sh')) as f:
        assert 'data/coco/proposals/selective_search_train2017.json' in (
            f.read())


@pytest.mark.parametrize('rel_path', CONFIGS)
def test_coco_files_exist_in_the_coco_layout(rel_path):
    cfg = resolve(rel_path)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for ds in _datasets(cfg.get(key)):
            if ds['data_root'].rstrip('/') != 'data/coco':
                continue
            for field in ('ann_file', 'proposal_file'):
                name = ds.get(field)
                if name:
                    assert name in COCO_FILES, (
                        f'{rel_path}: {key} {field}={name!r} is not a file '
                        'of the COCO layout')
