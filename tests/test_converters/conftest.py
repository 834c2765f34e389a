"""Fixtures: a tiny fake CCOP checkpoint (see fake_ccop.py)."""
import importlib.util
import os.path as osp

import pytest
import torch


def load_fake_ccop():
    """The ``fake_ccop`` helper module, loaded by path."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'fake_ccop.py')
    spec = importlib.util.spec_from_file_location('ccop_fake_ckpt', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='session')
def fake_ccop_sd():
    return load_fake_ccop().make_fake_ccop_state_dict()


@pytest.fixture(scope='session')
def fake_ccop_ckpt(tmp_path_factory, fake_ccop_sd):
    path = tmp_path_factory.mktemp('ccop') / 'ccop_tiny.pth'
    torch.save(dict(state_dict=fake_ccop_sd, meta=dict(epoch=1)), str(path))
    return str(path)

