"""The main job end to end on a handful of images, then a rerun that reuses."""
import json
import os.path as osp

import pytest

from ccop_plugin.apis.main_job import run_main_job

pytestmark = pytest.mark.e2e


def test_main_job_runs_reports_and_reuses_stages(tiny_main_job, capsys):
    cfg, results = tiny_main_job  # run once per session (tests/conftest.py)
    metrics = results['ccop']['finetune']['metrics']
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    report = osp.join(cfg.work_dir, 'report.md')
    text = open(report).read()
    assert '| CCOP |' in text and 'bbox AP' in text
    for fig in ('proposals.png', 'pretrain_losses.png', 'curriculum.png'):
        assert osp.isfile(osp.join(cfg.work_dir, 'figures', fig)), fig
    with open(osp.join(cfg.work_dir, 'pretrain_ccop', 'stage.json')) as f:
        assert json.load(f)['iters'] == cfg.pretrain_iters
    capsys.readouterr()

    again = run_main_job(cfg)  # every stage is reused
    out = capsys.readouterr().out
    assert out.count('done before, reusing') == 5
    assert again['ccop']['finetune']['metrics'] == metrics
    # the report says which results were reused, and under which keys
    text = open(report).read()
    assert text.count('| reused |') == 5
    assert f"`{again['ccop']['pretrain']['key']}`" in text
