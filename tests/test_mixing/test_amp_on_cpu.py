"""docs/mixing.md: the block that runs a stock AMP config (MoCo v3's
ResNet one) on CPU builds a plain ``OptimWrapper`` with the inherited
optimizer; the stock config itself does not build without a GPU."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope

import ccop_plugin  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SECTION = '## Stock configs with mixed precision (`AmpOptimWrapper`) on CPU'


def _doc_block():
    text = open(osp.join(REPO, 'docs', 'mixing.md')).read()
    start = text.index(SECTION)
    return re.compile(r'```python\n(.*?)```', re.S).search(
        text, start).group(1)


def _build(cfg_text, tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text(cfg_text)
    cfg = Config.fromfile(str(path))
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3),
                                torch.nn.BatchNorm2d(4))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_optim_wrapper(model, cfg.optim_wrapper)


@pytest.mark.skipif(torch.cuda.is_available(), reason='AMP builds on GPU')
def test_stock_amp_config_needs_the_doc_block_on_cpu(tmp_path):
    block = _doc_block()
    stock = block.split('\n')[0] + '\n'  # the _base_ line alone
    with pytest.raises(AssertionError, match='only available'):
        _build(stock, tmp_path)
    ow = _build(block, tmp_path)
    assert type(ow) is OptimWrapper
    assert type(ow.optimizer).__name__ == 'LARS'
