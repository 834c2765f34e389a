"""Fake CCOP checkpoints for converter and transfer tests.

A state dict laid out as a CCOP pre-training writes it (query encoder,
momentum copy, projection necks, queues), built from the real ResNet and
FPN modules with perturbed values, in any width: the converters need the
key set of a ResNet + FPN, not its full width. At base width 64 a
ResNet-18 one takes about 104 MB on disk; at
:data:`~ccop_plugin.testing.NARROW_BASE_CHANNELS` about 14 MB.
"""
from collections import OrderedDict
from pathlib import Path
from typing import Mapping, Optional, Union

from .models import NARROW_BASE_CHANNELS


def fake_ccop_state_dict(depth: int = 18, fpn_channels: int = 128,
                         seed: int = 0,
                         base_channels: int = 64) -> 'OrderedDict':
    """State dict laid out as CCOP's: query ``backbone.`` / ``neck.`` (a
    ResNet of ``depth`` and ``base_channels``, an FPN with BN of
    ``fpn_channels``), the momentum copy under ``encoder_k.module.`` (the
    query values + 1), ``img_neck.mlp.0.weight``,
    ``roi_neck.fc.0.weight``, ``queue`` / ``roi_queue`` and their
    pointers.

    Values are the modules' initial ones perturbed by ``seed`` (so that
    equality checks mean something) with positive running variances (a
    usable network). The same arguments give the same tensors.
    """
    import torch
    from mmdet.models.necks import FPN
    from mmpretrain.models.backbones import ResNet
    torch.manual_seed(seed)
    backbone = ResNet(depth=depth, base_channels=base_channels,
                      stem_channels=base_channels, out_indices=(0, 1, 2, 3))
    widths = [base_channels * 2**i for i in range(4)]
    in_ch = widths if depth < 50 else [4 * w for w in widths]
    neck = FPN(in_ch, fpn_channels, num_outs=4, norm_cfg=dict(type='BN'))
    sd = OrderedDict()
    for prefix, mod in (('backbone.', backbone), ('neck.', neck)):
        for k, v in mod.state_dict().items():
            if k.endswith('running_var'):
                v = v + 0.1 * torch.rand_like(v)
            elif v.is_floating_point():
                v = v + 0.01 * torch.randn_like(v)
            sd[prefix + k] = v
    for k, v in list(sd.items()):
        sd['encoder_k.module.' + k] = v + 1
    hid = 8 * base_channels  # 512 at the standard width
    sd['img_neck.mlp.0.weight'] = torch.randn(hid, hid)
    sd['roi_neck.fc.0.weight'] = torch.randn(hid, fpn_channels * 49)
    sd['queue'] = torch.randn(128, 256)
    sd['queue_ptr'] = torch.zeros(1, dtype=torch.long)
    sd['roi_queue'] = torch.randn(128, 256)
    sd['roi_queue_ptr'] = torch.zeros(1, dtype=torch.long)
    return sd


def narrow_fake_ccop_state_dict(seed: int = 0) -> 'OrderedDict':
    """:func:`fake_ccop_state_dict` of a ResNet-18 at
    ``NARROW_BASE_CHANNELS`` with the standard FPN width (128, the width of
    the tiny Mask R-CNN config): the keys and FPN of the standard one at
    about 1/8 of its bytes."""
    return fake_ccop_state_dict(depth=18, fpn_channels=128, seed=seed,
                                base_channels=NARROW_BASE_CHANNELS)


def write_runner_style_checkpoint(path: Union[str, Path],
                                  state_dict: Mapping,
                                  meta: Optional[dict] = None,
                                  hub_name: Optional[str] = None) -> str:
    """``state_dict`` saved as mmengine's Runner saves it: ``meta``
    (default ``{'iter': 2}``), the weights and a message hub's state (a
    ``HistoryBuffer``, a NumPy scalar), the objects a safe loader must
    rebuild.

    Returns:
        str: ``path``.
    """
    import numpy as np
    import torch
    from mmengine.logging import MessageHub
    path = str(path)
    hub = MessageHub.get_instance(hub_name or f'fake_ckpt_{path}')
    hub.update_scalar('train/loss', 1.5)
    hub.update_info('eta', np.float64(3.))
    torch.save(dict(meta=dict(iter=2) if meta is None else meta,
                    state_dict=state_dict,
                    message_hub=hub.state_dict()), path)
    return path
