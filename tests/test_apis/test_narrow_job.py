"""``base_channels``: the main job with the narrow ResNet-18 of
``ccop_plugin.testing`` in both models (what the tests' main job runs;
``--base-channels`` on the command line). The default keeps every config
and every stage key as it was."""
import pytest

from ccop_plugin.apis import stages
from ccop_plugin.apis.job_config import MainJobConfig
from ccop_plugin.apis.main_job_cli import parse_args
from ccop_plugin.apis.methods import FINETUNE_CONFIG
from ccop_plugin.utils import get_config_path


def test_default_width_keeps_the_config_file_and_the_settings():
    cfg = MainJobConfig()
    assert stages.detector_config(cfg) == get_config_path(FINETUNE_CONFIG)
    for step in (stages.PretrainStep(cfg, 'ccop'),
                 stages.FinetuneStep(cfg, 'ccop'),
                 stages.TestStep(cfg, 'ccop')):
        assert 'base_channels' not in step.settings(), step.name


def test_narrow_job_narrows_the_detector_and_keys_its_stages():
    cfg = MainJobConfig(base_channels=16)
    det = stages.detector_config(cfg)
    assert det.model.backbone.base_channels == 16
    assert det.model.backbone.stem_channels == 16
    assert list(det.model.neck.in_channels) == [16, 32, 64, 128]
    from mmengine.config import Config
    wide = Config.fromfile(get_config_path(FINETUNE_CONFIG)).model
    # what the heads read stays as it is
    assert det.model.neck.out_channels == wide.neck.out_channels
    assert det.model.rpn_head == wide.rpn_head
    for step in (stages.PretrainStep(cfg, 'ccop'),
                 stages.FinetuneStep(cfg, 'ccop'),
                 stages.TestStep(cfg, 'ccop')):
        assert step.settings()['base_channels'] == 16, step.name
    wide = stages.PretrainStep(MainJobConfig(), 'ccop').settings()
    assert stages.PretrainStep(cfg, 'ccop').settings() != wide


def test_cli_base_channels(capsys):
    assert parse_args(['--base-channels', '16']).base_channels == 16
    assert parse_args([]).base_channels is None
    with pytest.raises(SystemExit):
        parse_args(['--base-channels', '24'])
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith('--base-channels must divide 64, not 24')
