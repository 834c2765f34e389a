"""The main job keys every stage on its settings: a change recomputes that
stage and the stages after it, says so, and loses nothing."""
import json
import os
import os.path as osp

import pytest

from ccop_plugin.apis import main_job
from ccop_plugin.apis.main_job import (
    MainJobConfig,
    Stage,
    prepare_data,
    run_method,
)


@pytest.fixture
def fake_stages(monkeypatch):
    """Stage functions that record their calls and write a file each."""
    calls = []

    def fake(name):
        def fn(cfg, *args):
            calls.append(name)
            work_dir = args[-1] if args else cfg.data_root
            os.makedirs(work_dir, exist_ok=True)
            out = osp.join(work_dir, f'{name}.out')
            with open(out, 'w') as f:
                f.write(json.dumps(dict(iters=cfg.pretrain_iters,
                                        img_size=cfg.img_size)))
            return dict(checkpoint=out, proposal_file=out,
                        metrics={'coco/bbox_mAP': 0.5})
        return fn

    for name in ('data', 'proposals', 'pretrain', 'convert', 'finetune'):
        monkeypatch.setattr(main_job, f'stage_{name}', fake(name))
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
