"""The multi-seed comparison: seed handling, stage keys per seed and method,
the record's format (science.json) and the mean ± std table -- with stubbed
stage functions, so nothing is trained here."""
import json
import math
import os
import os.path as osp

import pytest

from ccop_plugin.apis import (
    pretrain,
    report,
    science_record,
    stages,
    stats,
    tables,
)
from ccop_plugin.apis.comparison import run_comparison
from ccop_plugin.apis.main_job import MainJobConfig, run_method
from ccop_plugin.apis.methods import METHOD_NAMES, METHODS, PRETRAIN_CONFIGS
from ccop_plugin.utils.stats import mean_ci, mean_std

STEPS = dict(data=stages.DataStep, proposals=stages.ProposalsStep,
             pretrain=stages.PretrainStep, convert=stages.ConvertStep,
             finetune=stages.FinetuneStep, test=stages.TestStep)


def stage_settings(cfg, name, method=None):
    step = STEPS[name]
    return (step(cfg) if name == 'data' else step(cfg, method)).settings()



@pytest.fixture
def fake_stages(monkeypatch):
    """Stage functions recording (stage, method, data seed, run seed)."""
    calls = []

    def fake(name):
        def fn(self, work_dir):
            cfg = self.cfg
            method = self.method if name == 'pretrain' else None
            calls.append((name, method, cfg.seed, cfg.train_seed))
            os.makedirs(work_dir, exist_ok=True)
            out = osp.join(work_dir, f'{name}.out')
            with open(out, 'w') as f:
                json.dump(dict(seed=cfg.train_seed), f)
            # AP depends on the run seed (and the test split on nothing else)
            ap = 0.1 + 0.01 * cfg.train_seed + (0.05 if name == 'test' else 0)
            return dict(checkpoint=out, proposal_file=out, splits={},
                        iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
                        config=name,
                        metrics={'coco/bbox_mAP': ap,
                                 'coco/segm_mAP': ap / 2})
        return fn

    for name in ('data', 'proposals', 'pretrain', 'convert', 'finetune',
                 'test'):
        monkeypatch.setattr(STEPS[name], 'compute', fake(name))
    # the report's sample images need real data and models
    monkeypatch.setattr(report, 'draw_sample_proposals', lambda *a, **k: None)
    monkeypatch.setattr(report, 'draw_sample_detections',
                        lambda *a, **k: None)
    return calls


class FakeProbe(list):
    """A probe passed in: records (checkpoint, seed) of every call."""

    def __call__(self, checkpoint, data_root, seed=0, val_split='val'):
        assert val_split == 'test'
        self.append((checkpoint, seed))
        return dict(acc=0.6 + 0.01 * seed)


@pytest.fixture
def fake_probe():
    return FakeProbe()


def _cfg(tmp_path, **kw):
    return MainJobConfig(work_dir=str(tmp_path / 'cmp'), seed=7,
                         num_unlabeled=4, num_train=2, num_val=2,
                         num_test=2, pretrain_iters=2, **kw)


def test_every_seed_same_data_other_training_seed(tmp_path, fake_stages,
                                                  fake_probe):
    cfg = _cfg(tmp_path)
    res = run_comparison(cfg, ['ccop', 'none'], seeds=[7, 8, 9],
                         probe=fake_probe)
    # the data and proposals are made once, with the data seed
    assert [c for c in fake_stages if c[0] in ('data', 'proposals')] == [
        ('data', None, 7, 7), ('proposals', None, 7, 7)]
    # every other stage ran once per method and run seed, with that seed
    pre = [c for c in fake_stages if c[0] == 'pretrain']
    assert pre == [('pretrain', 'ccop', 7, s) for s in (7, 8, 9)]
    fin = sorted(c[3] for c in fake_stages if c[0] == 'finetune')
    assert fin == [7, 7, 8, 8, 9, 9]
    assert sorted(s for _, s in fake_probe) == [7, 7, 8, 8, 9, 9]
    # the probe reads the pre-training checkpoint; None for no pre-training
    ckpts = {c for c, _ in fake_probe}
    assert None in ckpts and any(c and 'pretrain_ccop' in c for c in ckpts)

    runs = res['runs']
    # folders: the data seed's runs share the demo's names
    assert runs['ccop'][7]['pretrain']['stage'] == 'pretrain_ccop'
    assert runs['ccop'][8]['pretrain']['stage'] == 'pretrain_ccop_seed8'
    assert runs['none'][9]['test']['stage'] == 'test_none_seed9'
    # keys: one per (method, seed), every one on the same data
    keys = {runs[m][s]['finetune']['key'] for m in runs for s in runs[m]}
    assert len(keys) == 6
    for m in runs:
        for s in runs[m]:
            up = runs[m][s]['finetune']['settings']['upstream']
            assert up['data'] == res['data']['key']
            assert runs[m][s]['finetune']['settings']['seed'] == s
    # figures come from the test split
    assert res['values']['ccop']['bbox_ap'] == pytest.approx(
        [0.1 + 0.01 * s + 0.05 for s in (7, 8, 9)])
    assert res['values']['none']['probe_acc'] == pytest.approx(
        [0.67, 0.68, 0.69])

    # a rerun reuses every stage and gives the same values
    fake_stages.clear()
    fake_probe.clear()
    again = run_comparison(cfg, ['ccop', 'none'], seeds=[7, 8, 9],
                           probe=fake_probe)
    assert not fake_stages and not fake_probe
    assert again['values'] == res['values']
    # one more seed: only its stages run
    run_comparison(cfg, ['ccop', 'none'], seeds=[7, 8, 9, 10],
                   probe=fake_probe)
    assert {c[3] for c in fake_stages} == {10}


def test_demo_stage_keys_unchanged_without_test_split_and_run_seed(tmp_path):
    """The demo's keys do not depend on the new options at their defaults."""
    cfg = MainJobConfig(work_dir=str(tmp_path))
    assert 'num_test' not in stage_settings(cfg, 'data')
    pre = stage_settings(cfg, 'pretrain', 'ccop')
    assert pre == dict(method='ccop', config=PRETRAIN_CONFIGS['ccop'],
                       iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
                       seed=0)
    assert stage_settings(MainJobConfig(run_seed=3), 'finetune',
                          'ccop')['seed'] == 3
    assert stage_settings(MainJobConfig(num_test=5), 'data')['num_test'] == 5


def test_demo_run_has_no_test_stage_without_test_split(tmp_path,
                                                       fake_stages):
    cfg = _cfg(tmp_path)
    cfg.num_test = 0
    r = run_method(cfg, 'ccop')
    assert set(r) == {'pretrain', 'convert', 'finetune'}
    assert r['pretrain']['stage'] == 'pretrain_ccop'


def test_record_format(tmp_path, fake_stages, fake_probe):
    cfg = _cfg(tmp_path)
    record = str(tmp_path / 'out' / 'science.json')
    res = run_comparison(cfg, ['ccop', 'mocov2', 'none'], seeds=[7, 8],
                         record=record, command='compare --seeds 2',
                         probe=fake_probe)
    with open(record) as f:
        obj = json.load(f)
    assert set(obj) == {'protocol', 'results'}
    assert list(obj['results']) == ['ccop', 'mocov2', 'none']
    for m, vals in obj['results'].items():
        assert set(vals) == {'probe_acc', 'bbox_ap', 'segm_ap'}
        assert all(len(v) == 2 for v in vals.values())
    assert obj['results']['mocov2']['bbox_ap'] == pytest.approx(
        [0.1 + 0.01 * s + 0.05 for s in (7, 8)])
    p = obj['protocol']
    assert p['seeds'] == [7, 8] and p['data_seed'] == 7
    assert p['methods'] == ['ccop', 'mocov2', 'none']
    assert p['pretrain']['iters'] == 2 and p['pretrain']['batch'] == 16
    assert p['pretrain']['configs']['mocov2'] == PRETRAIN_CONFIGS['mocov2']
    assert p['data'] == dict(num_unlabeled=4, num_train=2, num_val=2,
                             num_test=2, img_size=128)
    assert p['evaluation']['split'] == 'test'
    assert p['finetune']['epochs'] == cfg.finetune_epochs
    for k in ('platform', 'cpu_count', 'torch', 'device', 'python'):
        assert p['machine'][k], k
    assert p['settings']['work_dir'] == cfg.work_dir
    assert p['command'] == 'compare --seeds 2'
    assert p['compute_seconds'] >= 0 and p['seconds'] >= 0
    assert 'extra' not in p['settings']  # MainJobConfig holds settings only
    assert science_record.read_science_record(record) == obj
    assert res['record'] == record
    # markdown table and plot with error bars in the report
    text = open(osp.join(cfg.work_dir, 'report.md')).read()
    assert '## Comparison over 2 seed(s)' in text
    assert '![comparison](figures/comparison.png)' in text
    assert osp.isfile(osp.join(cfg.work_dir, 'figures', 'comparison.png'))
    assert 'test_mocov2_seed8' in text or '| test mocov2 seed 8 |' in text


def test_no_probe_is_null_and_records_no_stage(tmp_path, fake_stages):
    cfg = _cfg(tmp_path)
    res = run_comparison(cfg, ['ccop'], seeds=[7, 8])
    assert res['values']['ccop']['probe_acc'] == [None, None]
    obj = science_record.read_science_record(
        osp.join(cfg.work_dir, 'science.json'))
    assert obj['results']['ccop']['probe_acc'] == [None, None]
    assert obj['protocol']['evaluation']['probe_acc'].startswith('no probe')
    # nothing recorded as done: a later run with the probe measures it
    assert not osp.exists(osp.join(cfg.work_dir, 'probe_ccop', 'stage.json'))


def test_probe_failure_is_null_and_retried(tmp_path, fake_stages, capsys):
    def broken(*a, **k):
        raise RuntimeError('boom')
    r = run_method(_cfg(tmp_path), 'none', seed=8, probe=broken)
    assert r['probe']['acc'] is None
    assert 'probe_none_seed8: the probe failed (RuntimeError: boom)' in \
        capsys.readouterr().out
    seen = FakeProbe()
    again = run_method(_cfg(tmp_path), 'none', seed=8, probe=seen)
    assert again['probe']['acc'] == pytest.approx(0.68) and len(seen) == 1


def test_probe_is_passed_in_and_keyed_by_its_name(tmp_path):
    """The probe is an argument: called once with the split, and recorded
    under its dotted name (the linear probe's keys stay those of before)."""
    from ccop_plugin.evaluation.linear_probe import linear_probe
    seen = FakeProbe()
    assert stages.probe_accuracy(seen, 'c.pth', 'root', 3,
                                 split='test') == pytest.approx(0.63)
    assert seen == [('c.pth', 3)]
    cfg = MainJobConfig(work_dir=str(tmp_path))
    step = stages.ProbeStep(cfg, 'ccop', linear_probe)
    assert step.settings()['function'] == (
        'ccop_plugin.evaluation.linear_probe.linear_probe')


def test_mean_std_and_table():
    ms = mean_std([0.1, 0.2, None, 0.3])
    assert ms['n'] == 3 and ms['mean'] == pytest.approx(0.2)
    assert ms['std'] == pytest.approx(0.1)  # sample std (ddof 1)
    assert mean_std([0.4])['std'] is None
    assert mean_std([None])['mean'] is None
    ci = mean_ci([1.0, 2.0, None, 3.0])  # sd 1, se 1/sqrt(3), t 4.3027
    assert ci['se'] == pytest.approx(1 / math.sqrt(3))
    assert ci['lo'] == pytest.approx(2 - 4.3027 / math.sqrt(3), abs=1e-4)
    assert ci['hi'] == pytest.approx(2 + 4.3027 / math.sqrt(3), abs=1e-4)
    assert mean_ci([1.0])['lo'] is None
    none = dict(segm_ap=[None] * 3, probe_acc=[None] * 3)
    sep = stats.separation(dict(ccop=dict(none, bbox_ap=[0.3, 0.4, 0.5]),
                                mocov2=dict(none, bbox_ap=[0.1, 0.3, 0.3])))
    assert sep['bbox_ap']['ci_excludes_zero']  # diffs 0.2, 0.1, 0.2
    assert sep['bbox_ap']['ci95'][0] > 0
    values = dict(ccop=dict(probe_acc=[None, None], bbox_ap=[0.5, 0.52],
                            segm_ap=[0.4, None]))
    table = tables.comparison_table(values, [0, 1])
    row = [line for line in table.splitlines()
           if line.startswith('| CCOP |')][0]
    assert row == f'| CCOP | - | 51.0 ± {100 * math.sqrt(2e-4):.1f} | ' \
        '40.0 (1 of 2) |'
    assert '| CCOP | 1 | - | 52.0 | - |' in table


def _scalars(run_dir, losses):
    os.makedirs(osp.join(run_dir, '20260101_000000', 'vis_data'))
    with open(osp.join(run_dir, '20260101_000000', 'vis_data',
                       'scalars.json'), 'w') as f:
        for i, v in enumerate(losses):
            f.write(json.dumps(dict(iter=i + 1, loss=v, loss_img=v / 2,
                                    lr=0.1)) + '\n')


def test_final_losses_and_loss_table(tmp_path):
    rows = [dict(iter=i, loss=float(i), lr=1.) for i in range(1, 21)]
    fl = stats.final_losses(rows)
    assert fl == dict(loss=pytest.approx(19.5))  # last 2 of 20; lr ignored
    assert stats.final_losses(rows[:3]) == dict(loss=3.)  # at least one
    runs = {'ccop': {}, 'none': {}}
    for s, tail in ((0, 5.0), (1, 6.0)):
        d = str(tmp_path / f'pre{s}')
        _scalars(d, [9.0] * 9 + [tail])
        runs['ccop'][s] = dict(pretrain=dict(checkpoint=osp.join(d, 'x.pth')))
        runs['none'][s] = dict(finetune=dict())
    table = tables.pretrain_loss_table(runs, ['ccop', 'none'], [0, 1])
    assert '| method | loss | loss_img |' in table
    row = [line for line in table.splitlines()
           if line.startswith('| CCOP |')][0]
    sd = math.sqrt(0.5)
    assert row == f'| CCOP | 5.500 ± {sd:.3f} | 2.750 ± {sd / 2:.3f} |'
    assert 'random init' not in table and '| none |' not in table
    assert tables.pretrain_loss_table(dict(none=runs['none']), ['none'],
                                      [0, 1]) == ''


def test_over_chance_table():
    values = dict(ccop=dict(infonce_over_chance=[0.7, 0.9],
                            roi_infonce_over_chance=[0.3, None],
                            intra_over_chance=[0.02, 0.04]),
                  mocov2=dict(infonce_over_chance=[0.4, 0.4]),
                  none=dict(bbox_ap=[0.1, 0.1]))
    table = tables.over_chance_table(values)
    rows = {r.split(' | ')[0]: r for r in table.splitlines()
            if r.startswith('| ')}
    sd = math.sqrt(0.02)
    assert rows['| CCOP'] == (f'| CCOP | 0.80 ± {sd:.2f} [0.70, 0.90] | '
                              '0.30 | 0.03 ± 0.01 [0.02, 0.04] |')
    assert rows['| MoCo v2 (mmpretrain)'] == (
        '| MoCo v2 (mmpretrain) | 0.40 ± 0.00 [0.40, 0.40] | - | - |')
    assert not any('random init' in r for r in rows)
    assert tables.over_chance_table(dict(none=values['none'])) == ''


def test_paired_table_against_mocov2():
    def m(xs):
        return dict(bbox_ap=list(xs), segm_ap=[None] * len(xs),
                    probe_acc=[0.2] * len(xs))
    values = dict(ccop=m([0.30, 0.32]), mocov2=m([0.20, 0.30]),
                  none=m([0.10, 0.40]))
    table = tables.paired_table(values)
    ccop = [r for r in table.splitlines() if r.startswith('| CCOP |')][0]
    sd = 100 * math.sqrt(((0.10 - 0.06) ** 2 + (0.02 - 0.06) ** 2) / 1)
    half = 12.7062 * sd / math.sqrt(2)  # t(0.975, 1 dof) x se
    assert ccop == (f'| CCOP | +6.0 ± {sd:.1f} [{6 - half:+.1f}, '
                    f'{6 + half:+.1f}] (2 of 2, stable) | - | '
                    '+0.0 ± 0.0 [+0.0, +0.0] (0 of 2) |')
    none = [r for r in table.splitlines() if r.startswith('| no pre')][0]
    assert '(1 of 2)' in none and 'stable' not in none
    assert 'MoCo v2 (mmpretrain) |' not in table.split('---')[-1]
    assert tables.paired_table(dict(ccop=values['ccop'])) == ''


def test_compute_seconds_counts_every_stage_once():
    results = dict(data=dict(seconds=1.0), proposals=dict(seconds=2.0))
    runs = {'ccop': {0: dict(pretrain=dict(seconds=10.0),
                             finetune=dict(seconds=20.0),
                             probe=dict(acc=0.5))},
            'none': {0: dict(finetune=dict(seconds=5.5))}}
    assert stats.compute_seconds(results, runs) == 38.5


def test_record_writer_checks_format_and_never_replaces_foreign_files(
        tmp_path):
    path = str(tmp_path / 'science.json')
    good = dict(ccop=dict(probe_acc=[0.5], bbox_ap=[0.1], segm_ap=[None]))
    proto = dict(seeds=[0], methods=['ccop'])
    old_mask = os.umask(0o022)
    try:
        science_record.write_science_record(path, proto, good)
    finally:
        os.umask(old_mask)
    assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's 0600
    # its own record: fine
    science_record.write_science_record(path, proto, good)
    with pytest.raises(ValueError, match='one value per seed'):
        science_record.write_science_record(
            path, dict(seeds=[0, 1], methods=['ccop']), good)
    with pytest.raises(ValueError, match='finite number'):
        science_record.write_science_record(path, proto, dict(ccop=dict(
            probe_acc=[float('nan')], bbox_ap=[0.1], segm_ap=[0.1])))
    other = str(tmp_path / 'other.json')
    with open(other, 'w') as f:
        f.write('{"mine": 1}')
    with pytest.raises(FileExistsError, match='not a record of this tool'):
        science_record.write_science_record(other, proto, good)
    assert open(other).read() == '{"mine": 1}'
    with pytest.raises(ValueError, match=r'other.json: not a science record'):
        science_record.read_science_record(other)


def test_unknown_method_and_bad_seeds_are_refused(tmp_path):
    cfg = _cfg(tmp_path)
    with pytest.raises(ValueError, match='unknown method'):
        run_comparison(cfg, ['ccop', 'simclr'], seeds=[0])
    with pytest.raises(ValueError, match='distinct'):
        run_comparison(cfg, ['ccop'], seeds=[1, 1])
    foreign = tmp_path / 'notes.json'
    foreign.write_text('{}')
    with pytest.raises(FileExistsError, match='not a record of this tool'):
        run_comparison(cfg, ['ccop'], seeds=[1], record=str(foreign))
    assert not osp.exists(cfg.work_dir)  # refused before any work
    assert foreign.read_text() == '{}'


def test_cli_seeds_and_methods(capsys):
    from ccop_plugin.apis import comparison_cli as cp
    cfg, methods, seeds, record, probe, command = cp.parse_args(
        ['--seed', '5', '--work-dir', 'w'])
    assert seeds == [5, 6, 7] and methods == ['ccop', 'mocov2', 'none']
    assert cfg.num_test == 40 and cfg.seed == 5 and cfg.run_seed is None
    assert record is None and probe
    assert command == 'tools/compare_pretraining.py --seed 5 --work-dir w'
    _, methods, seeds, _, _, _ = cp.parse_args(['--seeds', '2',
                                                '--methods', 'all'])
    assert methods == list(METHODS) and seeds == [0, 1]
    with pytest.raises(SystemExit):
        cp.parse_args(['--methods', 'ccop', 'simclr'])
    assert 'unknown method(s) simclr' in capsys.readouterr().err


def test_every_method_has_a_packaged_config_with_its_ablation():
    from mmengine.config import Config

    from ccop_plugin.utils import get_config_path
    assert set(METHODS) == set(PRETRAIN_CONFIGS) | {'none'}
    models = {m: Config.fromfile(get_config_path(c)).model
              for m, c in PRETRAIN_CONFIGS.items()}
    base = models['ccop']
    assert base.intra_head.anchor == 'query'
    assert models['ccop_intra_key'].intra_head.anchor == 'key'
    # ablations by config: the head is left out, not weighted by 0
    assert models['ccop_no_intra'].intra_head is None
    assert models['ccop_no_intra'].roi_head == base.roi_head
    assert models['ccop_no_inter'].roi_head is None
    assert models['ccop_no_inter'].intra_head == base.intra_head
    cur = models['ccop_no_curriculum'].curriculum
    for k in ('iou_thr', 'mag_xy', 'mag_wh'):
        assert cur[k][0] == cur[k][1] == base.curriculum[k][0]
    for m in ('ccop_no_curriculum', 'ccop_no_intra', 'ccop_no_inter',
              'ccop_intra_key'):  # otherwise the tiny CCOP
        a, b = dict(models[m]), dict(base)
        for k in ('curriculum', 'intra_head', 'roi_head'):
            a.pop(k), b.pop(k)
        assert a == b, m
    assert models['heatmap'].type == 'CCOP'
    # the method runs the in-step variant (boxes from the key view's heat
    # map inside each step, no proposal file), and its name says so; the
    # key stays 'heatmap' so that earlier records and work dirs keep reading
    assert models['heatmap'].box_source.type == 'HeatmapBoxSource'
    assert 'instep' in PRETRAIN_CONFIGS['heatmap']
    assert 'in-step' in METHOD_NAMES['heatmap']
    assert models['plrc'].type == 'PLRC' and models['mcl'].type == 'MCL'


def test_pretrain_options_same_budget_for_every_method(tmp_path):
    from mmengine.config import Config

    from ccop_plugin.utils import get_config_path
    cfg = MainJobConfig(work_dir=str(tmp_path), pretrain_iters=8,
                        pretrain_batch=2, run_seed=4)
    for m, c in PRETRAIN_CONFIGS.items():
        conf = Config.fromfile(get_config_path(c))
        conf.merge_from_dict(pretrain.pretrain_options(cfg, m))
        assert conf.train_cfg.max_iters == 8, m
        assert conf.train_dataloader.batch_size == 2, m
        assert conf.randomness.seed == 4, m
        assert conf.default_hooks.checkpoint.max_keep_ckpts == 2, m
        sched = conf.param_scheduler
        assert [s['type'] for s in sched] == ['LinearLR',
                                              'CosineAnnealingLR'], m
        assert sched[0]['end'] == sched[1]['begin'] == 4
        assert sched[1]['end'] == 8 and sched[1]['T_max'] == 4
        ds = conf.train_dataloader.dataset
        assert ds.data_root.endswith('images/unlabeled/'), m
        if m != 'mocov2':
            assert ds.ann_file.endswith('unlabeled_proposals.json'), m


def test_data_generator_test_split(tmp_path):
    from ccop_plugin.datagen import generate_synthetic_coco
    a = generate_synthetic_coco(str(tmp_path / 'a'), seed=1, num_unlabeled=1,
                                num_train=1, num_val=2, img_size=64)
    assert 'test' not in a['params']['sizes']  # earlier datasets still match
    b = generate_synthetic_coco(str(tmp_path / 'b'), seed=1, num_unlabeled=1,
                                num_train=1, num_val=2, img_size=64,
                                num_test=2)
    assert b['splits']['test']['num_images'] == 2
    test = json.load(open(tmp_path / 'b' / 'annotations' /
                          'instances_test.json'))
    assert len(test['images']) == 2 and test['annotations']
    va = open(tmp_path / 'a' / 'images' / 'val' / '000001.png', 'rb').read()
    vb = open(tmp_path / 'b' / 'images' / 'val' / '000001.png', 'rb').read()
    tb = open(tmp_path / 'b' / 'images' / 'test' / '000001.png', 'rb').read()
    assert va == vb and tb != vb  # val unchanged; test are other images
