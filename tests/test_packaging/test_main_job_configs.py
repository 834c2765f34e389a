"""The main job takes its configs from the package and pre-trains in this
process (mmengine's Runner), resuming from the last checkpoint."""
import os.path as osp

import pytest

from ccop_plugin.apis import main_job
from ccop_plugin.utils import get_config_path, get_config_root, list_configs


def test_get_config_path_finds_packaged_configs():
    root = get_config_root()
    assert root.endswith(osp.join('ccop_plugin', '.mim', 'configs'))
    by_rel = get_config_path('ccop/ccop_resnet18-fpn_cpu-tiny.py')
    assert by_rel == osp.join(root, 'ccop', 'ccop_resnet18-fpn_cpu-tiny.py')
    assert get_config_path('ccop_resnet18-fpn_cpu-tiny') == by_rel
    assert 'mix/mocov2_resnet18_object-branch_cpu-tiny.py' in list_configs()
    with pytest.raises(FileNotFoundError, match='not in'):
        get_config_path('no_such_config.py')


def test_main_job_configs_are_packaged():
    assert not hasattr(main_job, 'ROOT')
    for name in list(main_job.PRETRAIN_CONFIGS.values()) + [
            main_job.FINETUNE_CONFIG]:
        assert osp.isfile(get_config_path(name))


@pytest.mark.parametrize('interrupted', [False, True])
def test_stage_pretrain_runs_in_process_and_resumes(tmp_path, monkeypatch,
                                                    interrupted):
    calls = []

    def fake_pretrain(config, work_dir, cfg_options=None, resume=None):
        calls.append(dict(config=config, options=cfg_options, resume=resume))
        open(osp.join(work_dir, 'iter_4.pth'), 'w').close()

    monkeypatch.setattr(main_job, 'pretrain', fake_pretrain)
    work = tmp_path / 'pretrain_ccop'
    work.mkdir()
    if interrupted:
        (work / 'iter_2.pth').write_text('')
    cfg = main_job.MainJobConfig(work_dir=str(tmp_path), pretrain_iters=4)
    out = main_job.stage_pretrain(cfg, 'ccop', str(work))
    call, = calls
    assert call['config'] == get_config_path(main_job.PRETRAIN_CONFIGS['ccop'])
    assert call['resume'] == (str(work / 'iter_2.pth') if interrupted else
                              None)
    assert call['options']['train_cfg.max_iters'] == 4
    assert out['checkpoint'] == str(work / 'iter_4.pth')
