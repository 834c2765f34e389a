"""The comparison's positive controls (what must hold before its
differences are read) and the ablations' table against CCOP."""
import math

import pytest

from ccop_plugin.apis import tables
from ccop_plugin.apis.stats import positive_controls


def _values(moco_probe, none_probe, moco_box=(0.05, 0.06, 0.05),
            none_box=(0.02, 0.03, 0.03), ratios=(0.3, 0.4, 0.35)):
    return dict(
        mocov2=dict(bbox_ap=list(moco_box), segm_ap=[None] * 3,
                    probe_acc=list(moco_probe),
                    infonce_over_chance=list(ratios)),
        none=dict(bbox_ap=list(none_box), segm_ap=[None] * 3,
                  probe_acc=list(none_probe)))


def test_controls_hold():
    checks = {c['name']: c for c in positive_controls(
        _values([0.35, 0.36, 0.37], [0.30, 0.30, 0.31]),
        supervised=[0.78, 0.80, None])}
    assert list(checks) == ['probe_reads_features', 'learner_learns_task',
                            'probe_beats_random',
                            'pretraining_helps_detector']
    assert all(c['holds'] for c in checks.values())
    assert checks['probe_reads_features']['mean'] == pytest.approx(0.79)
    assert checks['learner_learns_task']['mean'] == pytest.approx(0.35)
    # paired differences 0.05, 0.06, 0.06
    assert checks['probe_beats_random']['mean'] == pytest.approx(
        0.17 / 3)
    assert checks['pretraining_helps_detector']['ci95'][0] > 0


def test_each_control_can_fail():
    # the supervised probe below 70 %, InfoNCE at 0.8 x chance, the probe
    # differences +0.02, -0.01, +0.01 (mean 0.0067 < std 0.015), one run
    # where random init detects better (interval reaches below 0)
    checks = {c['name']: c for c in positive_controls(
        _values([0.32, 0.30, 0.32], [0.30, 0.31, 0.31],
                none_box=(0.02, 0.07, 0.03), ratios=(0.8, 0.8, 0.8)),
        supervised=[0.6, 0.65])}
    assert not any(c['holds'] for c in checks.values())
    r = checks['probe_beats_random']
    assert r['std'] == pytest.approx(math.sqrt(
        sum((d - 0.02 / 3) ** 2 for d in (0.02, -0.01, 0.01)) / 2))
    # a mean below zero fails even when its size exceeds the std
    neg = {c['name']: c for c in positive_controls(
        _values([0.30, 0.30, 0.30], [0.31, 0.32, 0.31]))}
    assert neg['probe_beats_random']['mean'] < 0
    assert not neg['probe_beats_random']['holds']


def test_controls_only_what_was_measured():
    assert positive_controls({}) == []
    v = _values([0.3] * 3, [0.3] * 3)
    del v['mocov2']['infonce_over_chance']
    names = [c['name'] for c in positive_controls(v)]
    assert names == ['probe_beats_random', 'pretraining_helps_detector']
    assert tables.controls_table({}) == ''


def test_controls_table():
    table = tables.controls_table(
        _values([0.32, 0.30, 0.32], [0.30, 0.31, 0.31]),
        supervised=[0.78, 0.80])
    rows = [r for r in table.splitlines() if r.startswith('| ')][2:]
    assert len(rows) == 4
    assert rows[0].endswith('| mean >= 70 | 79.0 ± 1.4 | yes |')
    assert rows[1].endswith('| mean <= 0.75 | 0.35 ± 0.05 | yes |')
    assert rows[2].startswith('| MoCo v2 (mmpretrain) beats no '
                              'pre-training (random init) on the probe')
    assert rows[2].endswith('| **no** |') and '| +0.7 ± 1.5 [' in rows[2]
    assert rows[3].endswith('| yes |')


def test_ablations_read_against_ccop():
    def m(x):
        return dict(bbox_ap=[x, x + 0.01], segm_ap=[None, None],
                    probe_acc=[None, None])
    values = dict(ccop=m(0.06), mocov2=m(0.05), none=m(0.02),
                  ccop_no_intra=m(0.04), ccop_intra_key=m(0.07))
    assert list(tables.ablations(values)) == ['ccop', 'ccop_no_intra',
                                        'ccop_intra_key']
    table = tables.paired_table(tables.ablations(values), against='ccop')
    rows = [r for r in table.splitlines() if r.startswith('| CCOP, ')]
    assert len(rows) == 2 and 'MoCo' not in table.split('---')[-1]
    assert '| -2.0 ± 0.0' in rows[0] and '(0 of 2, stable)' in rows[0]
    assert '| +1.0 ± 0.0' in rows[1] and '(2 of 2, stable)' in rows[1]
    assert tables.paired_table(tables.ablations(dict(mocov2=m(0.1))),
                               against='ccop') == ''


def test_summary_table():
    results = dict(
        ccop=dict(bbox_ap=[0.06, 0.07], segm_ap=[0.04, None],
                  probe_acc=[0.33, 0.35], infonce_over_chance=[0.8, 0.7],
                  roi_infonce_over_chance=[0.3, 0.3],
                  intra_over_chance=[0.02, 0.04]),
        none=dict(bbox_ap=[0.02, 0.02], segm_ap=[0.01, 0.01],
                  probe_acc=[0.3, 0.3]),
        supervised=dict(probe_acc=[0.78, 0.8]))
    rows = tables.summary_table(results).splitlines()
    assert rows[2] == ('| CCOP | 6.5 ± 0.7 | 4.0 | 34.0 ± 1.4 | '
                       '0.75 (RoI 0.30, intra 0.03) |')
    assert rows[3] == ('| no pre-training (random init) | 2.0 ± 0.0 | '
                       '1.0 ± 0.0 | 30.0 ± 0.0 | - |')
    assert rows[4] == ("| supervised (probe's control) | - | - | "
                       '79.0 ± 1.4 | - |')


def test_readme_quotes_the_science_record():
    """README's science table is the committed record's, as
    tools/science_tables.py prints it (no figure typed by hand)."""
    import os.path as osp

    from ccop_plugin.apis.science_record import read_science_record
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    record = osp.join(repo, 'docs', 'benchmarks', 'science.json')
    readme = osp.join(repo, 'README.md')
    if not (osp.exists(record) and osp.exists(readme)):
        pytest.skip('not a checkout (installed package)')
    table = tables.summary_table(read_science_record(record)['results'])
    assert table in open(readme, encoding='utf-8').read()


def test_science_tables_cli(tmp_path, capsys):
    from ccop_plugin.apis.comparison_cli import tables_main
    from ccop_plugin.apis.science_record import write_science_record
    values = _values([0.35, 0.36, 0.37], [0.30, 0.30, 0.31])
    path = str(tmp_path / 'science.json')
    write_science_record(path, dict(seeds=[0, 1, 2]), values,
                         supervised=[0.8, 0.8, 0.8])
    assert tables_main([path]) == 0
    out = capsys.readouterr().out
    assert out.startswith('| pre-training | bbox AP |')
    assert 'Positive controls' in out and 'Paired differences' in out
    assert "| supervised (probe's control) | - | - | 80.0 ± 0.0 | - |" in out
    bad = tmp_path / 'other.json'
    bad.write_text('{"a": 1}')
    for p in (str(bad), str(tmp_path / 'missing.json')):
        assert tables_main([p]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith('science_tables: ')


def test_per_data_seed_table():
    # 2 data seeds x 2 run seeds, data seed first
    values = dict(ccop=dict(bbox_ap=[0.06, 0.08, 0.05, 0.05],
                            segm_ap=[None] * 4, probe_acc=[None] * 4),
                  mocov2=dict(bbox_ap=[0.05, 0.05, 0.05, 0.04],
                              segm_ap=[None] * 4, probe_acc=[None] * 4))
    table = tables.per_data_seed_table(values, [0, 1], 2)
    rows = [r for r in table.splitlines() if r.startswith('| CCOP')]
    assert rows == ['| CCOP | bbox AP | +2.0 | +0.5 |']
    assert tables.per_data_seed_table(values, [0], 4) == ''
    assert tables.per_data_seed_table(values, None, 4) == ''
