"""The tiny config's real data pipeline feeds the model (data contract).

Skipped until the data side (ProposalImageDataset, LoadProposals,
BoxAwareMultiView, PackBoxSelfSupInputs) is registered.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import DefaultScope
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS

import ccop_plugin  # noqa: F401

TINY = osp.join(
    osp.dirname(__file__), '..', '..', 'configs', 'ccop',
    'ccop_resnet18-fpn_cpu-tiny.py')
NEEDED = ('LoadProposals', 'BoxAwareMultiView', 'PackBoxSelfSupInputs')

pytestmark = pytest.mark.skipif(
    any(TRANSFORMS.get(t) is None for t in NEEDED)
    or DATASETS.get('ProposalImageDataset') is None,
    reason='data side of the CCOP contract not registered yet')


def test_tiny_pipeline_feeds_ccop(tmp_path, tiny_proposal_coco):
    tiny_proposal_coco(tmp_path, size=(160, 200), min_side=30)
    cfg = Config.fromfile(TINY)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = str(tmp_path) + '/'
    ds_cfg.ann_file = 'proposals.json'
    ds_cfg.data_prefix = dict(img_path='images/')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DATASETS.build(ds_cfg)
        items = [dataset[i] for i in range(2)]
    for item in items:
        assert len(item['inputs']) == 2
        vb = item['data_samples'].view_bboxes
        assert vb.dtype == torch.float32 and vb.dim() == 3
        assert vb.shape[0] == 2 and vb.shape[2] == 4
        assert tuple(item['inputs'][0].shape[-2:]) == (96, 96)
    model_cfg = cfg.model.to_dict()
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).train()
    data = model.data_preprocessor(default_collate(items), True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
