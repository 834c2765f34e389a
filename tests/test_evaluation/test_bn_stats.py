"""The BN-statistics check tells a checkpoint whose stored statistics fit
the fine-tuning images from one whose do not (the smallest stored
running_var, the diagnostic the docs gave, reads healthy for both)."""
import numpy as np
import pytest
import torch
from PIL import Image

from ccop_plugin.evaluation import bn_statistics_drift, format_drift
from ccop_plugin.evaluation.bn_stats import _batch, list_images
from ccop_plugin.testing import NARROW_BASE_CHANNELS

SIZE = 96


@pytest.fixture(scope='module')
def case(tmp_path_factory):
    from mmdet.models.backbones import ResNet
    d = tmp_path_factory.mktemp('bn')
    img_dir = d / 'images'
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        yy, xx = np.mgrid[0:80, 0:100]
        img = np.dstack([(xx * (i + 1)) % 256, (yy * 3) % 256,
                         rng.integers(0, 256, (80, 100))]).astype(np.uint8)
        Image.fromarray(img).save(img_dir / f'{i}.png')
    torch.manual_seed(0)
    # the narrow ResNet-18 of ccop_plugin.testing: 2 files of 3 MB, not 45
    net = ResNet(depth=18, out_indices=(0, 1, 2, 3), norm_eval=False,
                 base_channels=NARROW_BASE_CHANNELS,
                 stem_channels=NARROW_BASE_CHANNELS)
    fresh = {'backbone.' + k: v.clone() for k, v in net.state_dict().items()}
    torch.save(dict(state_dict=fresh), d / 'fresh.pth')
    # the same weights with statistics of exactly these images
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative: one batch -> its statistics
    net.train()
    with torch.no_grad():
        net(_batch(list_images(str(img_dir), 4), SIZE))
    fitted = {'backbone.' + k: v for k, v in net.state_dict().items()}
    torch.save(dict(state_dict=fitted), d / 'fitted.pth')
    return d


def test_initial_statistics_do_not_fit(case):
    res = bn_statistics_drift(str(case / 'fresh.pth'), str(case / 'images'),
                              num_images=4, size=SIZE)
    assert res['depth'] == 18 and len(res['stages']) == 4
    assert res['min_running_var'] == pytest.approx(1.0)  # looks healthy
    assert not res['ok']
    assert 'norm_eval=False' in format_drift(res)


def test_statistics_of_the_images_fit(case):
    res = bn_statistics_drift(str(case / 'fitted.pth'),
                              str(case / 'images'), num_images=4, size=SIZE)
    assert res['ok'], res
    for s in res['stages']:
        assert s['ratio'] == pytest.approx(1.0, abs=0.05)


def test_cli_exit_codes(case, capsys):
    from ccop_plugin.evaluation.bn_stats_cli import main
    imgs = str(case / 'images')
    opts = ['--num-images', '4', '--size', str(SIZE)]
    assert main([str(case / 'fresh.pth'), imgs, *opts]) == 3
    assert 'do not fit' in capsys.readouterr().out
    assert main([str(case / 'fitted.pth'), str(case / 'nothing'),
                 *opts]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith('error: ')
