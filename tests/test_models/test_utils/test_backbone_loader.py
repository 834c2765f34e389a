"""The backbone loader: width and detector checkpoints."""
import pytest
import torch
from mmdet.models.backbones import ResNet

from ccop_plugin.models.utils.backbone_loader import (
    BackboneLoadError,
    load_resnet_backbone,
)


def _resnet18(width, seed=0):
    torch.manual_seed(seed)
    return ResNet(depth=18, stem_channels=width, base_channels=width)


def test_width_16_state_dict_loads_with_its_width():
    """The science protocol trains width-16 ResNet-18s: the loader reads
    the width from the tensors instead of assuming 64."""
    src = _resnet18(16, seed=1).state_dict()
    net, info = load_resnet_backbone(
        {'backbone.' + k: v for k, v in src.items()})
    assert info['width'] == 16 and info['depth'] == 18
    got = net.state_dict()
    assert all(torch.equal(got[k], v) for k, v in src.items())
    outs = net(torch.zeros(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [16, 32, 64, 128]


def test_random_init_takes_the_width():
    net, info = load_resnet_backbone(None, width=16, seed=0)
    assert info['width'] == 16
    assert net.conv1.weight.shape[0] == 16
    assert net.layer4[0].conv1.weight.shape[0] == 128
    with pytest.raises(ValueError):
        load_resnet_backbone(None, width=0)


def test_detector_checkpoint_gives_its_backbone():
    """A supervised detector's checkpoint (mmdet keys ``backbone.``,
    ``neck.``, ``rpn_head.``, ``roi_head.``) loads as its backbone."""
    src = _resnet18(16, seed=2).state_dict()
    ckpt = {'meta': {}, 'state_dict': {
        **{'backbone.' + k: v for k, v in src.items()},
        'neck.lateral_convs.0.conv.weight': torch.zeros(8, 32, 1, 1),
        'rpn_head.rpn_conv.weight': torch.zeros(8, 8, 3, 3),
        'roi_head.bbox_head.fc_cls.weight': torch.zeros(6, 16)}}
    net, info = load_resnet_backbone(ckpt)
    assert info['width'] == 16
    got = net.state_dict()
    assert all(torch.equal(got[k], v) for k, v in src.items())


def test_no_resnet_is_one_line():
    with pytest.raises(BackboneLoadError) as e:
        load_resnet_backbone({'head.fc.weight': torch.zeros(2, 2)})
    assert '\n' not in str(e.value)
