"""The main job end to end on a handful of images, then a rerun that reuses."""
import json
import os.path as osp

from ccop_plugin.apis.main_job import MainJobConfig, run_main_job


def test_main_job_runs_reports_and_reuses_stages(tmp_path, capsys):
    cfg = MainJobConfig(
        work_dir=str(tmp_path / 'demo'), num_unlabeled=8, num_train=8,
        num_val=4, img_size=96, pretrain_iters=2, pretrain_batch=4,
        finetune_epochs=1, workers=1)
    results = run_main_job(cfg)
    metrics = results['ccop']['finetune']['metrics']
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)
    report = osp.join(cfg.work_dir, 'report.md')
    text = open(report).read()
    assert '| CCOP |' in text and 'bbox AP' in text
    for fig in ('proposals.png', 'pretrain_losses.png', 'curriculum.png'):
        assert osp.isfile(osp.join(cfg.work_dir, 'figures', fig)), fig
    with open(osp.join(cfg.work_dir, 'pretrain_ccop', 'stage.json')) as f:
        assert json.load(f)['iters'] == 2
    capsys.readouterr()

    again = run_main_job(cfg)  # every stage is reused
    out = capsys.readouterr().out
    assert out.count('done before, reusing') == 5
    assert again['ccop']['finetune']['metrics'] == metrics
    # the report says which results were reused, and under which keys
    text = open(report).read()
    assert text.count('| reused |') == 5
    assert f"`{again['ccop']['pretrain']['key']}`" in text
