"""The main job takes its configs from the package and pre-trains in this
process (mmengine's Runner), resuming from the last checkpoint."""
import os.path as osp

import pytest
import torch

from ccop_plugin.apis import main_job, stages
from ccop_plugin.apis.methods import FINETUNE_CONFIG, PRETRAIN_CONFIGS
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
    for name in list(PRETRAIN_CONFIGS.values()) + [FINETUNE_CONFIG]:
        assert osp.isfile(get_config_path(name))


def _intact(path):
    torch.save(dict(state_dict={}), str(path))


@pytest.mark.parametrize('interrupted', [False, True])
def test_stage_pretrain_runs_in_process_and_resumes(tmp_path, monkeypatch,
                                                    interrupted):
    calls = []

    def fake_pretrain(config, work_dir, cfg_options=None, resume=None):
        calls.append(dict(config=config, options=cfg_options, resume=resume))
        open(osp.join(work_dir, 'iter_4.pth'), 'w').close()

    monkeypatch.setattr(stages, 'pretrain', fake_pretrain)
    work = tmp_path / 'pretrain_ccop'
    work.mkdir()
    if interrupted:
        _intact(work / 'iter_2.pth')
    cfg = main_job.MainJobConfig(work_dir=str(tmp_path), pretrain_iters=4)
    out = stages.PretrainStep(cfg, 'ccop').compute(str(work))
    call, = calls
    assert call['config'] == get_config_path(PRETRAIN_CONFIGS['ccop'])
    assert call['resume'] == (str(work / 'iter_2.pth') if interrupted else
                              None)
    assert call['options']['train_cfg.max_iters'] == 4
    assert out['checkpoint'] == str(work / 'iter_4.pth')


def test_pretrain_resumes_from_the_newest_intact_checkpoint(tmp_path,
                                                            monkeypatch,
                                                            capsys):
    """A checkpoint cut short by a crash (``last_checkpoint`` names it) is
    skipped with a warning instead of failing the resumed run."""
    calls = []

    def fake_pretrain(config, work_dir, cfg_options=None, resume=None):
        calls.append(resume)
        _intact(osp.join(work_dir, 'iter_12.pth'))

    monkeypatch.setattr(stages, 'pretrain', fake_pretrain)
    work = tmp_path / 'pretrain_ccop'
    work.mkdir()
    _intact(work / 'iter_9.pth')
    (work / 'iter_10.pth').write_bytes(b'PK\x03\x04 truncated')
    (work / 'last_checkpoint').write_text(str(work / 'iter_10.pth'))
    cfg = main_job.MainJobConfig(work_dir=str(tmp_path), pretrain_iters=12)
    out = stages.PretrainStep(cfg, 'ccop').compute(str(work))
    assert calls == [str(work / 'iter_9.pth')]
    assert 'cannot resume from' in capsys.readouterr().out
    # the newest by number, not by name (iter_9 sorts after iter_12)
    assert out['checkpoint'] == str(work / 'iter_12.pth')


def test_finetune_records_its_newest_checkpoint_by_number(tmp_path,
                                                          monkeypatch):
    from ccop_plugin.apis import finetune

    def fake_finetune(config, work_dir, **kwargs):
        for e in (9, 10):
            open(osp.join(work_dir, f'epoch_{e}.pth'), 'w').close()
        return {'coco/bbox_mAP': 0.1}

    monkeypatch.setattr(finetune, 'finetune_detector', fake_finetune)
    cfg = main_job.MainJobConfig(work_dir=str(tmp_path), finetune_epochs=10)
    out = stages.FinetuneStep(cfg, 'none').compute(str(tmp_path))
    assert out['checkpoint'] == str(tmp_path / 'epoch_10.pth')
