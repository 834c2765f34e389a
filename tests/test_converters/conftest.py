"""Fake CCOP checkpoints (``ccop_plugin.testing.checkpoints``), built once
per session and shared: read them, never write into their folders.

The files are of the narrow ResNet-18 (base width 16, FPN of 128 like the
tiny Mask R-CNN config): about 14 MB instead of 104 MB, with the key set
of the standard one. The standard width stays in memory
(``fake_ccop_sd``) for the tests that check its shapes.
"""
import os.path as osp

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL_CFG = osp.join(
    REPO, 'configs/mask_rcnn',
    'mask-rcnn_r18-ccop-tiny_fpn-bn-4conv1fc_6e_synth.py')


@pytest.fixture(scope='session')
def fake_ccop_sd():
    """The standard-width ResNet-18 + FPN CCOP state dict (in memory)."""
    from ccop_plugin.testing.checkpoints import fake_ccop_state_dict
    return fake_ccop_state_dict()


@pytest.fixture(scope='session')
def narrow_ccop_sd():
    """The narrow CCOP state dict that the files below hold."""
    from ccop_plugin.testing.checkpoints import narrow_fake_ccop_state_dict
    return narrow_fake_ccop_state_dict()


@pytest.fixture(scope='session')
def fake_ccop_ckpt(tmp_path_factory, narrow_ccop_sd):
    """``narrow_ccop_sd`` saved as ``{'state_dict', 'meta'}``."""
    path = tmp_path_factory.mktemp('ccop') / 'ccop_tiny.pth'
    torch.save(dict(state_dict=narrow_ccop_sd, meta=dict(epoch=1)),
               str(path))
    return str(path)


@pytest.fixture(scope='session')
def real_ckpt(tmp_path_factory, narrow_ccop_sd):
    """``narrow_ccop_sd`` as mmengine's Runner writes it: weights plus the
    message hub (HistoryBuffer, NumPy arrays and scalar) and meta."""
    from ccop_plugin.testing.checkpoints import write_runner_style_checkpoint
    folder = tmp_path_factory.mktemp('ccop_runner')
    return write_runner_style_checkpoint(
        folder / 'ccop_iter_2.pth', narrow_ccop_sd,
        hub_name=f'conv_safety_{folder}')


@pytest.fixture(scope='session')
def narrow_small_cfg(tmp_path_factory):
    """The tiny Mask R-CNN config (``SMALL_CFG``) with the narrow
    ResNet-18 (``ccop_plugin.testing.narrow_resnet18``): the target that
    the narrow checkpoints convert to with nothing missing."""
    from mmengine.config import Config

    from ccop_plugin.testing import narrow_resnet18
    cfg = Config.fromfile(SMALL_CFG)
    narrow_resnet18(cfg.model)
    path = str(tmp_path_factory.mktemp('narrow_cfg') /
               'mask-rcnn_r18-narrow.py')
    cfg.dump(path)
    return path
