"""A tiny fake CCOP checkpoint built from the real modules (no download).

Import it by path (``load_fake_ccop()`` in the tests): the name
``conftest`` is taken by tests/conftest.py.
"""
from collections import OrderedDict

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
            # perturbed values so that equality checks mean something, yet
            # a usable network (positive running_var)
            if k.endswith('running_var'):
                v = v + 0.1 * torch.rand_like(v)
            elif v.is_floating_point():
                v = v + 0.01 * torch.randn_like(v)
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
