"""The main job keys every stage on its settings: a change recomputes that
stage and the stages after it, says so, and loses nothing."""
import json
import os
import os.path as osp

import pytest

from ccop_plugin.apis import stages
from ccop_plugin.apis.config_digest import NAME_KEYED_DIGESTS
from ccop_plugin.apis.main_job import MainJobConfig, prepare_data, run_method
from ccop_plugin.apis.stage import Stage
from ccop_plugin.utils.coco_file import write_first_images

STEPS = dict(data=stages.DataStep, proposals=stages.ProposalsStep,
             pretrain=stages.PretrainStep, convert=stages.ConvertStep,
             finetune=stages.FinetuneStep, test=stages.TestStep)


@pytest.fixture
def fake_stages(monkeypatch):
    """Stage functions that record their calls and write a file each."""
    calls = []

    def fake(name):
        def fn(self, work_dir):
            cfg = self.cfg
            calls.append(name)
            os.makedirs(work_dir, exist_ok=True)
            out = osp.join(work_dir, f'{name}.out')
            with open(out, 'w') as f:
                f.write(json.dumps(dict(iters=cfg.pretrain_iters,
                                        img_size=cfg.img_size)))
            return dict(checkpoint=out, proposal_file=out, splits={},
                        iters=cfg.pretrain_iters, batch=cfg.pretrain_batch,
                        config=name, metrics={'coco/bbox_mAP': 0.5})
        return fn

    for name in ('data', 'proposals', 'pretrain', 'convert', 'finetune'):
        monkeypatch.setattr(STEPS[name], 'compute', fake(name))
    return calls


def _run(cfg):
    up = prepare_data(cfg)
    return dict(up, ccop=run_method(cfg, 'ccop', up))


def _runs(results):
    return dict(data=results['data']['run'],
                proposals=results['proposals']['run'],
                **{k: v['run'] for k, v in results['ccop'].items()})


def test_changed_settings_recompute_the_stage_and_those_after(
        tmp_path, fake_stages, capsys):
    cfg = MainJobConfig(work_dir=str(tmp_path / 'job'), pretrain_iters=2)
    first = _run(cfg)
    assert set(_runs(first).values()) == {'computed'}
    assert fake_stages == ['data', 'proposals', 'pretrain', 'convert',
                           'finetune']

    fake_stages.clear()
    again = _run(cfg)
    assert set(_runs(again).values()) == {'reused'} and not fake_stages
    assert again['ccop']['finetune']['key'] == first['ccop']['finetune'][
        'key']

    # more pre-training: data and proposals stay, the rest is recomputed
    capsys.readouterr()
    fake_stages.clear()
    cfg.pretrain_iters = 4
    third = _run(cfg)
    runs = _runs(third)
    assert runs['data'] == runs['proposals'] == 'reused'
    assert runs['pretrain'].startswith('recomputed (iters 2 -> 4')
    assert runs['convert'].startswith('recomputed (upstream.pretrain_ccop')
    assert runs['finetune'].startswith('recomputed')
    assert fake_stages == ['pretrain', 'convert', 'finetune']
    log = capsys.readouterr().out
    assert ('stage pretrain_ccop: settings changed (iters 2 -> 4), '
            'recomputing') in log
    # the new record states the settings its result was made with
    rec = json.load(open(osp.join(cfg.work_dir, 'pretrain_ccop',
                                  'stage.json')))
    assert rec['settings']['iters'] == 4
    assert json.load(open(rec['checkpoint']))['iters'] == 4
    # nothing lost: the previous result was moved aside
    old = osp.join(cfg.work_dir, 'superseded',
                   f"pretrain_ccop-{first['ccop']['pretrain']['key']}")
    assert json.load(open(osp.join(old, 'pretrain.out')))['iters'] == 2

    # other data: every stage is recomputed
    fake_stages.clear()
    cfg.img_size = 64
    fourth = _run(cfg)
    assert all(r.startswith('recomputed') for r in _runs(fourth).values())
    assert fake_stages == ['data', 'proposals', 'pretrain', 'convert',
                           'finetune']


def test_unfinished_stage_resumes_only_with_the_same_settings(tmp_path):
    wd = str(tmp_path)
    st = Stage(wd, 'pretrain_x', dict(iters=2))
    os.makedirs(st.dir)
    os.makedirs(osp.dirname(st.started))
    with open(st.started, 'w') as f:  # started, then interrupted
        json.dump(dict(key=st.key, settings=st.settings), f)
    with open(osp.join(st.dir, 'iter_1.pth'), 'w') as f:
        f.write('partial')
    seen = []
    same = Stage(wd, 'pretrain_x', dict(iters=2))
    assert same.run(lambda: seen.append(os.listdir(same.dir)) or {})[
        'run'] == 'computed'
    assert 'iter_1.pth' in seen[0]  # resumed in place

    other = Stage(wd, 'pretrain_x', dict(iters=3))
    seen.clear()
    r = other.run(lambda: seen.append(os.listdir(other.dir)) or {})
    assert r['run'] == 'recomputed (iters 2 -> 3)'
    assert seen[0] == []  # started afresh


def test_record_of_an_older_version_is_recomputed(tmp_path, capsys):
    wd = str(tmp_path)
    os.makedirs(osp.join(wd, 'data'))
    with open(osp.join(wd, 'data', 'stage.json'), 'w') as f:
        json.dump(dict(data_root='x', seconds=1), f)  # no key
    r = Stage(wd, 'data', dict(seed=0)).run(lambda: dict(data_root='y'))
    assert r['run'] == 'recomputed (recorded before stage keys)'
    assert 'stage data: settings changed' in capsys.readouterr().out


# the keys of before the stages became objects: existing work dirs reuse
# their results (a change of the data format or the proposal preset changes
# them on purpose, and then these values with it; the probe stages changed
# when the linear probe declared version 2: same layers for every method,
# regularisation chosen on val; version 3: C3 + C4 by default; and version
# 4: one pooled cell per stage)
PINNED = {
    'demo': dict(data='b748817965d84d82', proposals='45e6414d310d7b13',
                 pretrain='b4472e754d75a16c', convert='294941906d1da23e',
                 finetune='5ff812a1950c5f82', probe='bcf388efc14c21d9',
                 none_finetune='f4391258cf36cc05',
                 none_probe='e91e348e6f31431a'),
    'cmp': dict(data='e1329e66955a19e3', proposals='c36e91122b6a1a59',
                pretrain='75d96bfd31b09e74', convert='170d3d35697bb8c2',
                finetune='c0dfeac06e89d16e', test='3226e5fd4cce7f93',
                probe='e8fdc77b8fe4519b', none_finetune='acbe65a1697d4b14',
                none_test='9967a0d156d4d3fd', none_probe='99296bc6730c3554'),
}


def test_stage_keys_are_those_of_before(tmp_path, fake_stages, monkeypatch):
    from ccop_plugin.evaluation.linear_probe import linear_probe
    monkeypatch.setattr(stages.ProbeStep, 'compute',
                        lambda self, out_dir: dict(acc=0.5))
    monkeypatch.setattr(stages.TestStep, 'compute',
                        lambda self, out_dir: dict(metrics={}))
    for tag, kw in (('demo', {}), ('cmp', dict(num_test=40, run_seed=1))):
        cfg = MainJobConfig(work_dir=str(tmp_path / tag), **kw)
        up = prepare_data(cfg)
        keys = dict(data=up['data']['key'],
                    proposals=up['proposals']['key'])
        for m in ('ccop', 'none'):
            pre = '' if m == 'ccop' else 'none_'
            r = run_method(cfg, m, up, probe=linear_probe)
            keys.update({pre + k: v['key'] for k, v in r.items()})
        assert keys == PINNED[tag], tag


def test_second_job_in_a_work_dir_is_refused_while_the_first_runs(
        tmp_path, fake_stages, monkeypatch):
    """Two jobs in one work dir: the second (other settings) used to move
    the running stage of the first aside; with the same settings both ran
    it at once. The work dir is locked for the whole run."""
    from dataclasses import replace

    from ccop_plugin.apis import report
    from ccop_plugin.apis.main_job import run_main_job
    from ccop_plugin.utils.folder_lock import FolderInUseError
    monkeypatch.setattr(report, 'draw_sample_proposals', lambda *a, **k: None)
    monkeypatch.setattr(report, 'draw_sample_detections',
                        lambda *a, **k: None)
    cfg = MainJobConfig(work_dir=str(tmp_path / 'job'), pretrain_iters=2)
    second = []
    real = stages.PretrainStep.compute

    def pretrain_and_meanwhile_start_another(self, out_dir):
        for other in (replace(cfg, pretrain_iters=3), cfg):
            with pytest.raises(FolderInUseError, match='is in use by pid'):
                run_main_job(other)
            second.append(osp.isdir(out_dir))
        return real(self, out_dir)

    monkeypatch.setattr(stages.PretrainStep, 'compute',
                        pretrain_and_meanwhile_start_another)
    res = run_main_job(cfg)
    assert second == [True, True]  # the running stage stayed in place
    assert res['ccop']['pretrain']['run'] == 'computed'
    assert not osp.exists(osp.join(cfg.work_dir, 'superseded'))
    assert run_main_job(cfg)['ccop']['pretrain']['run'] == 'reused'


def test_main_job_refuses_report_files_it_did_not_write(
        tmp_path, fake_stages, monkeypatch):
    """A user's report.md / figures in --work-dir were overwritten without a
    word; the job now writes only files its manifest lists."""
    from ccop_plugin.apis import report
    from ccop_plugin.apis.main_job import run_main_job
    monkeypatch.setattr(report, 'draw_sample_proposals', lambda *a, **k: None)
    monkeypatch.setattr(report, 'draw_sample_detections',
                        lambda *a, **k: None)
    cfg = MainJobConfig(work_dir=str(tmp_path / 'job'), pretrain_iters=2)
    os.makedirs(osp.join(cfg.work_dir, 'figures'))
    notes = osp.join(cfg.work_dir, 'report.md')
    fig = osp.join(cfg.work_dir, 'figures', 'pretrain_losses.png')
    for path in (notes, fig):
        with open(path, 'w') as f:
            f.write('the user\'s own')
    with pytest.raises(FileExistsError, match='report.md was not written by '
                       'the main job'):
        run_main_job(cfg)
    assert not fake_stages  # refused before any work
    os.remove(notes)
    with pytest.raises(FileExistsError, match='pretrain_losses.png'):
        run_main_job(cfg)
    assert open(fig).read() == 'the user\'s own'
    os.remove(fig)
    run_main_job(cfg)  # its own files: replaced on a rerun
    run_main_job(cfg)
    with open(notes, 'a') as f:
        f.write('a note added by hand\n')
    with pytest.raises(FileExistsError, match='or was changed since'):
        run_main_job(cfg)
    assert open(notes).read().endswith('a note added by hand\n')


def test_demo_cli_refuses_a_busy_work_dir_in_one_line(tmp_path, capsys):
    from ccop_plugin.apis.main_job_cli import main
    from ccop_plugin.utils.folder_lock import FolderLock
    work = str(tmp_path / 'busy')
    with FolderLock(work):
        assert main(['--work-dir', work]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'error: main job work dir {work} is in use by')
    assert len(err.splitlines()) == 1


def test_main_job_cli_names_a_non_finite_loss_in_one_line(monkeypatch,
                                                           capsys):
    """A NaN loss in any training stage of the main job ends it with exit 1
    and the hook's one line (not a traceback, not exit 0)."""
    from ccop_plugin.apis import main_job
    from ccop_plugin.apis.main_job_cli import main
    from ccop_plugin.engine.hooks import NonFiniteLossError
    line = ('fine-tuning (mask-rcnn_r18-ccop-tiny) stopped at iteration 18: '
            'loss is nan')

    def run(cfg):
        raise NonFiniteLossError(line)

    monkeypatch.setattr(main_job, 'run_main_job', run)
    assert main(['--work-dir', 'unused']) == 1
    err = capsys.readouterr().err.strip()
    assert err == f'error: {line}'


def test_finetune_images_subset_is_keyed_and_read(tmp_path, monkeypatch):
    """``finetune_images`` fine-tunes on the first N train images (a file
    of its own in the stage's folder) and is part of the fine-tuning key
    only when set; the data and the probe keep the whole split."""
    from ccop_plugin.apis import finetune as finetune_mod
    from ccop_plugin.apis.main_job_cli import build_parser, config_from_args
    data = tmp_path / 'job' / 'data' / 'annotations'
    data.mkdir(parents=True)
    coco = dict(categories=[dict(id=1, name='a')],
                images=[dict(id=i, file_name=f'{i}.png') for i in (5, 3, 9)],
                annotations=[dict(id=j, image_id=i, category_id=1)
                             for j, i in enumerate((5, 5, 3, 9))])
    (data / 'instances_train.json').write_text(json.dumps(coco))
    seen = {}

    def fake_finetune(config, out_dir, train_ann=None, **kw):
        seen['ann'] = json.load(open(train_ann)) if train_ann else None
        return {}

    monkeypatch.setattr(finetune_mod, 'finetune_detector', fake_finetune)
    cfg = MainJobConfig(work_dir=str(tmp_path / 'job'), finetune_images=2)
    step = stages.FinetuneStep(cfg, 'ccop')
    assert step.settings()['train_images'] == 2
    assert 'train_images' not in stages.FinetuneStep(
        MainJobConfig(), 'ccop').settings()
    step.compute(str(tmp_path / 'ft'))
    assert [im['id'] for im in seen['ann']['images']] == [5, 3]
    assert [a['image_id'] for a in seen['ann']['annotations']] == [5, 5, 3]
    assert seen['ann']['categories'] == coco['categories']
    with pytest.raises(ValueError, match='holds 3'):
        write_first_images(
            str(data / 'instances_train.json'), str(tmp_path / 'x.json'), 4)
    p = build_parser()
    with pytest.raises(ValueError, match='--finetune-images'):
        config_from_args(p.parse_args(['--finetune-images', '500']))
    assert config_from_args(p.parse_args(
        ['--num-train', '600', '--finetune-images', '500'])
    ).finetune_images == 500


def test_supervised_stage_key_holds_the_controls_version():
    """The supervised control's default steps changed (1200 -> 2400 ->
    4800): a comparison rerun must not reuse a control trained with the
    old default, so its stage key holds the control's version."""
    from ccop_plugin.evaluation import supervised_probe
    from ccop_plugin.evaluation.supervised_control import STEPS
    cfg = MainJobConfig(protocol='cpu-science', num_test=4)
    key = stages.SupervisedStep(cfg, supervised_probe).settings()
    assert key['version'] == supervised_probe.version >= 2
    assert STEPS == 4800


def test_supervised_stage_key_holds_the_probes_version(monkeypatch):
    """The control is scored by the linear probe: a new probe (other
    layers or pooling) is a new control, so the supervised stage is not
    reused across probe versions (it used to be keyed by the control's own
    version alone); keys made with probe version 3 stay as they were."""
    from ccop_plugin.evaluation import linear_probe, supervised_probe
    cfg = MainJobConfig(protocol='cpu-science', num_test=4)
    assert supervised_probe.probe_version == linear_probe.version
    monkeypatch.setattr(supervised_probe, 'probe_version', 3)
    before = stages.SupervisedStep(cfg, supervised_probe).settings()
    assert 'probe_version' not in before
    monkeypatch.setattr(supervised_probe, 'probe_version', 4)
    after = stages.SupervisedStep(cfg, supervised_probe).settings()
    assert after == dict(before, probe_version=4)


def _run_edited(cfg, tmp_path, name, edit):
    """The main job with packaged config ``name`` read as itself plus the
    config text ``edit``: the stages' runs (data, proposals, ccop's)."""
    from ccop_plugin.apis import config_digest
    from ccop_plugin.utils.config_path import get_config_path
    edited = str(tmp_path / 'edited.py')
    with open(edited, 'w') as f:
        f.write(f'_base_ = [{get_config_path(name)!r}]\n{edit}\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config_digest, 'get_config_path',
                   lambda n: edited if n == name else get_config_path(n))
        config_digest.config_digest.cache_clear()
        try:
            return _runs(_run(cfg))
        finally:
            config_digest.config_digest.cache_clear()


def test_edited_config_recomputes_its_stages(tmp_path, fake_stages):
    """The pre-training stage keyed its config by name alone: an edited
    config (here the image neck's init) reused the results of the old
    content. Its digest is now part of the key."""
    name = 'ccop/ccop_resnet18-fpn_cpu-tiny.py'
    cfg = MainJobConfig(work_dir=str(tmp_path / 'job'), pretrain_iters=2)
    first = _run(cfg)
    fake_stages.clear()
    runs = _run_edited(cfg, tmp_path, name,
                       'model = dict(img_neck=dict(init_cfg=None))')
    assert runs['data'] == runs['proposals'] == 'reused'
    assert runs['pretrain'].startswith('recomputed (config_digest')
    assert fake_stages == ['pretrain', 'convert', 'finetune']
    rec = json.load(open(osp.join(cfg.work_dir, 'pretrain_ccop',
                                  'stage.json')))
    assert rec['settings']['config_digest'] != NAME_KEYED_DIGESTS[name]
    # the packaged content again: the name-keyed key once more
    fake_stages.clear()
    again = _run(cfg)
    assert again['ccop']['pretrain']['key'] == first['ccop']['pretrain'][
        'key']
    assert fake_stages == ['pretrain', 'convert', 'finetune']


def test_edited_detector_config_recomputes_the_conversion(tmp_path,
                                                          fake_stages):
    """The conversion's target keys come from the detector config: an edit
    of it recomputes the conversion too, not only the fine-tuning."""
    from ccop_plugin.apis.methods import FINETUNE_CONFIG
    cfg = MainJobConfig(work_dir=str(tmp_path / 'job'), pretrain_iters=2)
    _run(cfg)
    fake_stages.clear()
    runs = _run_edited(cfg, tmp_path, FINETUNE_CONFIG,
                       'model = dict(neck=dict(num_outs=4))')
    assert runs['pretrain'] == 'reused'
    assert runs['convert'].startswith('recomputed (config_digest')
    assert fake_stages == ['convert', 'finetune']


def test_name_keyed_digests_are_of_packaged_configs():
    from ccop_plugin.apis.methods import (
        FINETUNE_CONFIG,
        PRETRAIN_CONFIGS,
        SCIENCE_FINETUNE_CONFIG,
        SCIENCE_PRETRAIN_CONFIGS,
    )
    used = {FINETUNE_CONFIG, SCIENCE_FINETUNE_CONFIG,
            *PRETRAIN_CONFIGS.values(), *SCIENCE_PRETRAIN_CONFIGS.values()}
    assert set(NAME_KEYED_DIGESTS) <= used
