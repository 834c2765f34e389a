"""The probe's positive control: a backbone trained with the labels."""
import pytest
import torch

from ccop_plugin.evaluation import supervised_probe, train_supervised_backbone
from ccop_plugin.evaluation.supervised_control import _random_view


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    from ccop_plugin.datagen import generate_synthetic_coco
    root = str(tmp_path_factory.mktemp('control') / 'data')
    generate_synthetic_coco(root, seed=0, num_unlabeled=1, num_train=4,
                            num_val=3, img_size=64, min_scale=0.15,
                            max_scale=0.3)
    return root


def test_views_keep_the_boxes_on_their_objects():
    """A box drawn on the image stays on the same pixels in every view
    (crop, flips, transpose)."""
    import numpy as np
    img = np.zeros((40, 50, 3), np.uint8)
    img[5:15, 20:32] = 255  # the object: a white block
    boxes = np.asarray([[20, 5, 32, 15], [0, 30, 4, 40]], np.float32)
    labels = np.asarray([3, 1])
    gen = torch.Generator().manual_seed(0)
    seen = 0
    for _ in range(40):
        v = _random_view(img, boxes, labels, 32, gen)
        if v is None:
            continue
        view, b, y = v
        assert view.shape == (32, 32, 3)
        for (x1, y1, x2, y2), c in zip(b, y):
            if c == 3:
                seen += 1
                inside = view[int(y1):int(y2), int(x1):int(x2)]
                assert inside.size and inside.min() == 255
    assert seen > 5


def test_control_trains_and_is_probed_like_a_checkpoint(tiny_data):
    state = torch.get_rng_state()
    net, info = train_supervised_backbone(tiny_data, seed=0, steps=2,
                                          batch_size=2, crop=48)
    assert torch.equal(torch.get_rng_state(), state)
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    assert info['steps'] == 2 and 0. <= info['train_acc'] <= 1.
    net2, _ = train_supervised_backbone(tiny_data, seed=0, steps=2,
                                        batch_size=2, crop=48)
    s1, s2 = net.state_dict(), net2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)  # seeded

    res = supervised_probe(tiny_data, seed=0, val_split='val', steps=2,
                           max_iter=20)
    assert res['encoder']['source'] == 'supervised control'
    assert res['supervised']['steps'] == 2
    assert res['feature_dim'] == 128 + 256  # the probe's features
    assert 0. <= res['acc'] <= 1. and res['select_split'] == 'val'


def test_control_has_the_protocol_width_and_trains_on_whole_images(
        tiny_data):
    """The control is the science protocol's architecture (width-16
    ResNet-18); a crop at least the image's side trains on whole images."""
    res = supervised_probe(tiny_data, seed=0, val_split='val', steps=2,
                           width=16, crop=256, max_iter=20)
    assert res['supervised']['width'] == 16
    assert res['supervised']['crop'] == 256
    assert res['encoder']['width'] == 16
    assert res['feature_dim'] == 32 + 64
