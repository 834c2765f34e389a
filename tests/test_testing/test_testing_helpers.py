"""ccop_plugin.testing: the narrow model keeps every loss and key of the
config it narrows, the light checkpoints drop only the optimizer's state,
and the data writers are deterministic."""
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from ccop_plugin.testing import (
    NARROW_HIDDEN_CHANNELS,
    light_checkpoints,
    narrow_resnet18,
    write_tiny_proposal_coco,
)
from ccop_plugin.utils import get_config_path

TINY = 'ccop/ccop_resnet18-fpn_cpu-tiny.py'


def test_narrow_resnet18_divides_the_backbone_widths_only():
    cfg = Config.fromfile(get_config_path(TINY))
    full = cfg.model.to_dict()
    m = narrow_resnet18(cfg.model)
    assert m is cfg.model
    assert m.backbone.base_channels == m.backbone.stem_channels == 16
    assert m.neck.in_channels == [16, 32, 64, 128]
    assert m.img_neck.in_channels == 128
    # what other modules read, and the queues, are those of the config
    assert m.neck.out_channels == full['neck']['out_channels']
    assert m.roi_neck.in_channels == full['roi_neck']['in_channels']
    assert m.img_neck.out_channels == full['img_neck']['out_channels']
    assert m.queue_len == full['queue_len']
    assert m.roi_neck.hid_channels == NARROW_HIDDEN_CHANNELS


def test_narrow_ccop_builds_with_the_same_keys_and_fewer_weights():
    from mmpretrain.registry import MODELS

    import ccop_plugin  # noqa: F401
    cfg = Config.fromfile(get_config_path(TINY))
    cfg.model.backbone.init_cfg = None
    full = MODELS.build(cfg.model.to_dict())
    narrow = MODELS.build(narrow_resnet18(cfg.model).to_dict())
    assert list(narrow.state_dict()) == list(full.state_dict())
    n_full = sum(p.numel() for p in full.parameters())
    n_narrow = sum(p.numel() for p in narrow.parameters())
    assert n_narrow * 4 < n_full


def test_narrow_resnet18_refuses_what_it_cannot_narrow():
    with pytest.raises(ValueError, match='no ResNet with depth=18'):
        narrow_resnet18(dict(backbone=dict(type='ResNet', depth=50)))
    with pytest.raises(ValueError, match='must divide 64'):
        narrow_resnet18(dict(backbone=dict(type='ResNet', depth=18)),
                        base_channels=24)


def test_light_checkpoints_drop_only_the_optimizer_state():
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', interval=5))))
    light_checkpoints(cfg)
    assert cfg.default_hooks.checkpoint == dict(
        type='CheckpointHook', interval=5, save_optimizer=False)
    assert light_checkpoints(Config(dict())).to_dict() == {}  # no hook


def test_tiny_proposal_coco_is_the_same_every_time(tmp_path):
    a = write_tiny_proposal_coco(tmp_path / 'a', num_imgs=2)
    b = write_tiny_proposal_coco(tmp_path / 'b', num_imgs=2)
    ja = json.loads((a / 'proposals.json').read_text())
    assert ja == json.loads((b / 'proposals.json').read_text())
    assert [im['file_name'] for im in ja['images']] == ['000.jpg', '001.jpg']
    assert len(ja['annotations']) == 12
    for name in ('000.jpg', '001.jpg'):
        assert (a / 'images' / name).read_bytes() == \
            (b / 'images' / name).read_bytes()


def test_session_checkpoint_is_a_small_real_ccop_checkpoint(
        tiny_ccop_checkpoint):
    from mmengine.runner import CheckpointLoader
    assert osp.getsize(tiny_ccop_checkpoint) < 20 * 2**20
    ckpt = CheckpointLoader.load_checkpoint(tiny_ccop_checkpoint, 'cpu')
    sd = ckpt['state_dict']
    assert sd['backbone.conv1.weight'].shape[0] == 16
    # the key encoder starts as a copy of the query encoder
    assert torch.equal(sd['backbone.conv1.weight'],
                       sd['encoder_k.module.0.conv1.weight'])
    assert {'queue.keys', 'object_branch.roi_queue.keys'} <= set(sd)


def test_session_data_are_shared_and_keyed_on_their_arguments(
        tiny_proposal_data, tiny_detection_data):
    assert tiny_proposal_data() == tiny_proposal_data(num_imgs=4)
    assert tiny_proposal_data(num_imgs=2) != tiny_proposal_data()
    empty = tiny_proposal_data(with_anns=False)
    assert json.loads((empty / 'proposals.json').read_text())[
        'annotations'] == []
    for split in ('train', 'val'):
        assert osp.isfile(osp.join(tiny_detection_data, 'annotations',
                                   f'instances_{split}.json'))
