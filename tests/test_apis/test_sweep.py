"""Budget sweep: separation statistics, record format, grid wiring."""
import json
import os.path as osp

import pytest

from ccop_plugin.apis import sweep
from ccop_plugin.apis.main_job import MainJobConfig


def _vals(ccop, moco, none):
    def m(xs):
        return dict(bbox_ap=list(xs), segm_ap=[None] * len(xs),
                    probe_acc=[None] * len(xs))
    return dict(ccop=m(ccop), mocov2=m(moco), none=m(none))


def test_separation_paired_differences():
    sep = sweep.separation(_vals([0.30, 0.32, 0.31], [0.20, 0.25, 0.30],
                                 [0.10, 0.40, 0.0]))
    assert set(sep) == {'bbox_ap'}  # nothing measured for the others
    s = sep['bbox_ap']
    assert s['diffs'] == pytest.approx([0.10, 0.07, 0.01])
    assert s['mean'] == pytest.approx(0.06)
    assert s['std'] == pytest.approx(0.0458258, rel=1e-5)
    assert s['wins'] == 3 and s['seeds'] == 3
    assert s['stable'] and s['beyond_one_std']
    assert s['ccop_beats_none'] == 2 and s['mocov2_beats_none'] == 2
    # mixed signs: not stable; a tie is not stable either
    s = sweep.separation(_vals([0.3, 0.1], [0.2, 0.2], [0, 0]))['bbox_ap']
    assert not s['stable'] and s['wins'] == 1
    assert not s['beyond_one_std']
    s = sweep.separation(_vals([0.3, 0.2], [0.2, 0.2], [0, 0]))['bbox_ap']
    assert not s['stable']
    assert sweep.separation(_vals([0.3], [0.2], [0.1]))['bbox_ap'][
        'std'] is None


def test_record_written_read_and_foreign_file_refused(tmp_path):
    path = str(tmp_path / 'sweep.json')
    points = [dict(num_unlabeled=200, pretrain_iters=100, seconds=1.0,
                   results=_vals([0.3], [0.2], [0.1]))]
    sweep.write_sweep_record(path, dict(seeds=[0]), points)
    obj = sweep.read_sweep_record(path)
    assert obj['points'] == points
    assert obj['protocol']['writer'] == sweep.SWEEP_WRITER
    sweep.write_sweep_record(path, dict(seeds=[0]), points * 2)  # ours
    foreign = tmp_path / 'notes.json'
    foreign.write_text('{"mine": 1}')
    with pytest.raises(FileExistsError, match='not a sweep record'):
        sweep.write_sweep_record(str(foreign), {}, points)
    assert json.loads(foreign.read_text()) == {'mine': 1}
    with pytest.raises(ValueError, match='not a sweep record'):
        sweep.read_sweep_record(str(foreign))


def test_run_sweep_grid_val_only_and_record_per_point(tmp_path, monkeypatch):
    calls = []

    def fake_comparison(cfg, methods, seeds, record=None, probe=None):
        calls.append((cfg.num_unlabeled, cfg.pretrain_iters, cfg.num_test,
                      cfg.work_dir, record))
        gain = cfg.pretrain_iters / 1000
        return dict(values=_vals([0.2 + gain] * len(seeds),
                                 [0.2] * len(seeds), [0.1] * len(seeds)))

    monkeypatch.setattr(sweep, 'run_comparison', fake_comparison)
    base = MainJobConfig(work_dir=str(tmp_path / 'w'), num_test=50)
    rec = str(tmp_path / 'sweep.json')
    out = sweep.run_sweep(base, [200, 100], [400, 200],
                          ['ccop', 'mocov2', 'none'], [0, 1], rec)
    assert [(u, it) for u, it, *_ in calls] == [
        (200, 100), (200, 200), (400, 100), (400, 200)]
    assert all(c[2] == 0 for c in calls)  # never the test split
    assert calls[0][3] == osp.join(base.work_dir, 'unlabeled200')
    assert calls[2][3] == osp.join(base.work_dir, 'unlabeled400')
    obj = sweep.read_sweep_record(rec)
    assert len(obj['points']) == 4 and obj['protocol']['split'] == 'val'
    assert obj['protocol']['grid'] == dict(num_unlabeled=[200, 400],
                                           pretrain_iters=[100, 200])
    # the grid's values are per point: the protocol names no single one
    # (it used to carry the base config's 200 iterations / images)
    proto = obj['protocol']
    assert 'iters' not in proto['pretrain']
    assert 'num_unlabeled' not in proto['data']
    assert 'num_test' not in proto['data']
    sep = obj['points'][1]['separation']['bbox_ap']
    assert sep['mean'] == pytest.approx(0.2) and sep['stable']
    table = open(osp.join(base.work_dir, 'sweep.md')).read()
    assert '| 400 | 200 | bbox_ap |' in table
    assert out['points'] == obj['points']


def test_cli_refuses_test_split(capsys):
    from ccop_plugin.apis.sweep_cli import parse_args
    with pytest.raises(SystemExit):
        parse_args(['--num-test', '10'])
    assert 'val split only' in capsys.readouterr().err
