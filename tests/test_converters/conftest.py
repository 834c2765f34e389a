"""A tiny fake CCOP checkpoint built from the real modules (no download)."""
from collections import OrderedDict

import pytest
import torch


def make_fake_ccop_state_dict(depth: int = 18, fpn_channels: int = 128,
                              seed: int = 0) -> OrderedDict:
    """State dict laid out as CCOP's: query ``backbone.``/``neck.``,
    momentum copy under ``encoder_k.``, projection necks, queues."""
    from mmdet.models.necks import FPN
    from mmpretrain.models.backbones import ResNet
    torch.manual_seed(seed)
    backbone = ResNet(depth=depth, out_indices=(0, 1, 2, 3))
    in_ch = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    neck = FPN(in_ch, fpn_channels, num_outs=4, norm_cfg=dict(type='BN'))
    sd = OrderedDict()
    for prefix, mod in (('backbone.', backbone), ('neck.', neck)):
        for k, v in mod.state_dict().items():
            # random values so that equality checks mean something
            if v.is_floating_point():
                v = torch.randn_like(v)
            sd[prefix + k] = v
    for k, v in list(sd.items()):
        sd['encoder_k.module.' + k] = v + 1
    sd['img_neck.mlp.0.weight'] = torch.randn(512, 512)
    sd['roi_neck.fc.0.weight'] = torch.randn(512, 6272)
    sd['queue'] = torch.randn(128, 256)
    sd['queue_ptr'] = torch.zeros(1, dtype=torch.long)
    sd['roi_queue'] = torch.randn(128, 256)
    sd['roi_queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return sd


@pytest.fixture(scope='session')
def fake_ccop_sd():
    return make_fake_ccop_state_dict()


@pytest.fixture(scope='session')
def fake_ccop_ckpt(tmp_path_factory, fake_ccop_sd):
    path = tmp_path_factory.mktemp('ccop') / 'ccop_tiny.pth'
    torch.save(dict(state_dict=fake_ccop_sd, meta=dict(epoch=1)), str(path))
    return str(path)
