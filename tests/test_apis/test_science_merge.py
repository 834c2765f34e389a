"""Joining science records of one protocol (more run seeds run later)."""
import json

import pytest

from ccop_plugin.apis import comparison_cli as cli
from ccop_plugin.apis.comparison import comparison_seeds
from ccop_plugin.apis.job_config import MainJobConfig
from ccop_plugin.apis.science_merge import merge_science_records
from ccop_plugin.apis.science_record import (
    read_science_record,
    write_science_record,
)


def _protocol(seeds, methods, **changes):
    p = dict(command=f'compare --seeds {len(seeds)}', seeds=list(seeds),
             data_seeds=[0, 1], data_seed=0,
             settings=dict(work_dir='w', num_unlabeled=20, seed=0),
             data=dict(num_unlabeled=20),
             pretrain=dict(iters=4, batch=2, configs={
                 m: f'{m}.py' for m in methods if m != 'none'},
                 per_method={m: dict(iters=4, batch=2)
                             for m in methods if m != 'none'}),
             evaluation=dict(split='test', supervised_probe_acc='control'),
             machine=dict(cpu='x'), compute_seconds=10.0,
             started_utc='2026-12-08T00:00:00Z', seconds=9.0)
    p.update(changes)
    return p


def _value(m, d, s, k):
    """A distinct, reproducible value per method, run and measure."""
    return round(0.01 * (len(m) + 10 * d + s) + 0.001 * len(k), 6)


def _record(path, seeds, methods, supervised=True, **changes):
    keys = [(d, s) for d in changes.get('data_seeds', (0, 1))
            for s in seeds]
    results = {m: {k: [_value(m, d, s, k) for d, s in keys]
                   for k in ('probe_acc', 'bbox_ap', 'segm_ap')}
               for m in methods}
    sup = [_value('sup', d, s, 'probe_acc') for d, s in keys]
    write_science_record(str(path), _protocol(seeds, methods, **changes),
                         results, supervised=sup if supervised else None)
    return str(path)


def test_join_adds_run_seeds_in_record_order(tmp_path):
    main = _record(tmp_path / 'main.json', [0, 1, 2, 3, 4],
                   ['ccop', 'mocov2', 'none'])
    abl = _record(tmp_path / 'abl.json', [0, 1, 2],
                  ['ccop', 'mocov2', 'none', 'ccop_no_intra'])
    more = _record(tmp_path / 'more.json', [3], ['ccop_no_intra'],
                   supervised=False)
    protocol, results, sup, left = merge_science_records(
        [abl, main, more], command='merge')
    assert protocol['seeds'] == [0, 1, 2, 3]
    assert left == [4]  # only ccop, mocov2, none and the control have it
    assert protocol['methods'] == ['ccop', 'mocov2', 'none', 'ccop_no_intra']
    keys = [(d, s) for d in (0, 1) for s in [0, 1, 2, 3]]
    for m in protocol['methods']:
        assert results[m]['bbox_ap'] == [_value(m, d, s, 'bbox_ap')
                                         for d, s in keys]
    assert sup == [_value('sup', d, s, 'probe_acc') for d, s in keys]
    assert [p['record'] for p in protocol['parts']] == [abl, main, more]
    assert protocol['compute_seconds'] == 30.0
    assert protocol['pretrain']['configs']['ccop_no_intra'] == (
        'ccop_no_intra.py')
    assert protocol['command'] == 'merge'
    # the joined record is a record, and joins again without repeating parts
    out = tmp_path / 'joined.json'
    write_science_record(str(out), protocol, results, supervised=sup)
    again, res2, _, _ = merge_science_records([str(out), main])
    assert res2 == results
    assert [p['record'] for p in again['parts']] == [abl, main, more]


def test_a_run_measured_twice_keeps_the_later_values_and_lists_both(
        tmp_path, capsys):
    a = _record(tmp_path / 'a.json', [0, 1], ['ccop', 'none'])
    b = tmp_path / 'b.json'
    _record(b, [1, 2], ['ccop', 'none'])
    rec = json.loads(b.read_text())
    rec['results']['ccop']['bbox_ap'][0] += 0.01  # run (0, 1): a rerun
    b.write_text(json.dumps(rec))
    protocol, results, _, _ = merge_science_records([a, str(b)])
    # run (0, 1) is the second of the joined record's order
    assert results['ccop']['bbox_ap'][1] == pytest.approx(
        _value('ccop', 0, 1, 'bbox_ap') + 0.01)
    assert results['none']['bbox_ap'][1] == _value('none', 0, 1, 'bbox_ap')
    [rerun] = protocol['reruns']  # the runs that agree are not listed
    assert rerun['method'] == 'ccop' and rerun['run'] == [0, 1]
    assert rerun['kept']['record'] == str(b)
    assert rerun['replaced']['record'] == a
    assert rerun['replaced']['values']['bbox_ap'] == _value(
        'ccop', 0, 1, 'bbox_ap')
    # the other order keeps a's values; a joined record keeps its reruns
    assert merge_science_records([str(b), a])[1]['ccop']['bbox_ap'][1] == (
        _value('ccop', 0, 1, 'bbox_ap'))
    out, table = tmp_path / 'j.json', tmp_path / 'j.md'
    assert cli.merge_main([a, str(b), '--record', str(out), '--table',
                           str(table)]) == 0
    assert '1 run(s) measured twice' in capsys.readouterr().out
    assert '| CCOP | (0, 1) |' in table.read_text()
    c = _record(tmp_path / 'c.json', [3], ['ccop', 'none'])
    again = merge_science_records([str(out), c])[0]
    assert again['reruns'] == protocol['reruns']


def test_another_protocol_is_refused_naming_the_setting(tmp_path):
    a = _record(tmp_path / 'a.json', [0], ['ccop'])
    b = _record(tmp_path / 'b.json', [1], ['ccop'],
                data=dict(num_unlabeled=40))
    with pytest.raises(ValueError, match=r'b\.json: not the protocol of '
                       r'.*a\.json \(protocol\.data\.num_unlabeled differs'):
        merge_science_records([a, b])
    c = _record(tmp_path / 'c.json', [1], ['ccop'], data_seeds=[0, 1, 2])
    with pytest.raises(ValueError, match=r'protocol\.data_seeds differs'):
        merge_science_records([a, c])
    # what a part may change: its work dir, machine, command and times
    d = _record(tmp_path / 'd.json', [1], ['ccop'], machine=dict(cpu='y'),
                settings=dict(work_dir='other', num_unlabeled=20, seed=0))
    assert merge_science_records([a, d])[0]['seeds'] == [0, 1]


def test_no_complete_run_seed_is_an_error(tmp_path):
    a = _record(tmp_path / 'a.json', [0], ['ccop'])
    b = _record(tmp_path / 'b.json', [1], ['none'])
    with pytest.raises(ValueError, match='no run seed has every method'):
        merge_science_records([a, b])


def test_cli_writes_record_table_and_refuses_a_foreign_file(tmp_path,
                                                            capsys):
    a = _record(tmp_path / 'a.json', [0, 1], ['ccop', 'mocov2', 'none'])
    b = _record(tmp_path / 'b.json', [2], ['ccop', 'mocov2', 'none'])
    out, table = tmp_path / 'j.json', tmp_path / 'j.md'
    assert cli.merge_main([a, b, '--record', str(out),
                           '--table', str(table)]) == 0
    rec = read_science_record(str(out))
    assert rec['protocol']['seeds'] == [0, 1, 2]
    assert rec['protocol']['command'].startswith(
        'tools/merge_science_records.py')
    text = table.read_text()
    assert 'over 6 seed(s)' in text and 'Positive control' in text
    foreign = tmp_path / 'notes.json'
    foreign.write_text('{"mine": 1}')
    assert cli.merge_main([a, b, '--record', str(foreign)]) == 2
    assert foreign.read_text() == '{"mine": 1}'
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'notes.json' in err[0]
    assert cli.merge_main([a, str(tmp_path / 'missing.json'), '--record',
                           str(tmp_path / 'k.json')]) == 2
    assert not (tmp_path / 'k.json').exists()


def test_first_run_seed_moves_the_run_seeds_only():
    cfg = MainJobConfig(work_dir='w')
    assert comparison_seeds(cfg, 2, 3) == [3, 4]
    assert comparison_seeds(cfg, 2) == [cfg.seed, cfg.seed + 1]
    with pytest.raises(ValueError, match='--first-run-seed'):
        comparison_seeds(cfg, 1, -1)
    a = cli.parse_options(['--seeds', '1', '--first-run-seed', '3',
                           '--data-seeds', '2'])
    assert a.seeds == [3] and a.data_seeds == [0, 1]
    assert '--first-run-seed 3' in a.command
