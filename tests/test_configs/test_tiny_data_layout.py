"""The tiny pre-training configs read, by default, what the documented
commands write (they pointed at a ``data/demo/{images/,proposals.json}``
layout that no documented command produced, and their comment's override
left ``data_prefix.img_path`` out)."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = sorted(osp.relpath(p, REPO) for p in
              glob.glob(osp.join(REPO, 'configs/**/*cpu-tiny.py'),
                        recursive=True))
ROOT = 'data/synth/'
PROPOSALS = 'annotations/unlabeled_proposals.json'
IMAGES = 'images/unlabeled/'


def _dataset(rel):
    import ccop_plugin  # noqa: F401  (custom_imports of the configs)
    return Config.fromfile(osp.join(REPO, rel)).train_dataloader.dataset


@pytest.mark.parametrize('rel', TINY)
def test_tiny_config_reads_the_documented_layout(rel):
    ds = _dataset(rel)
    if ds.type == 'ProposalImageDataset':
        assert (ds.data_root, ds.ann_file, ds.data_prefix.img_path) == (
            ROOT, PROPOSALS, IMAGES), rel
    else:  # MoCo v2: the unlabeled images themselves
        assert ds.data_root == ROOT + IMAGES, rel


def test_docs_and_config_comment_name_the_same_paths():
    out = f'--out {ROOT}{PROPOSALS}'
    doc = open(osp.join(REPO, 'docs', 'transfer.md')).read()
    cfg = open(osp.join(REPO, 'configs', 'ccop',
                        'ccop_resnet18-fpn_cpu-tiny.py')).read()
    for text in (doc, cfg):
        joined = re.sub(r'\\\n\s*#?\s*', '', text)  # continuation lines
        assert (f'selective_search.py {ROOT}{IMAGES.rstrip("/")} '
                f'--ann-file {ROOT}annotations/unlabeled.json {out}'
                in joined)
    # the override for other data names all three keys
    assert 'train_dataloader.dataset.data_prefix.img_path=' in cfg


def test_documented_commands_feed_the_tiny_config(tmp_path, monkeypatch):
    """What the two commands write (generator + proposal tool, through their
    library calls) is read by the unchanged CCOP tiny config."""
    from mmpretrain.registry import DATASETS

    from ccop_plugin.datagen import generate_synthetic_coco
    from ccop_plugin.proposals import (
        RunOptions,
        get_preset,
        list_coco_images,
        run_proposals,
    )
    monkeypatch.chdir(tmp_path)
    generate_synthetic_coco(ROOT, num_unlabeled=2, num_train=1, num_val=1,
                            img_size=96)
    ann = ROOT + 'annotations/unlabeled.json'
    run_proposals(list_coco_images(ann), ROOT + IMAGES.rstrip('/'),
                  get_preset('ccop'), 'ss_state',
                  RunOptions(out=ROOT + PROPOSALS, workers=1,
                             progress=False, log=lambda *a: None))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ds = DATASETS.build(_dataset('configs/ccop/'
                                     'ccop_resnet18-fpn_cpu-tiny.py'))
        assert len(ds) == 2
        item = ds[0]
    assert len(item['inputs']) == 2
    assert ds.proposal_stats['fallback'] == 0
