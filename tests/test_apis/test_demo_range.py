"""What a user should expect from the demo: the range is stored once, agrees
with its record, and the report says whether a run lies within it."""
import json
import os.path as osp
from dataclasses import replace

import pytest

from ccop_plugin.apis.demo_range import (
    DEMO_SETTINGS,
    expectation_lines,
)
from ccop_plugin.apis.demo_spread import (
    expected_from_record,
    read_run,
    read_spread_record,
    spread_markdown,
    write_spread_record,
)
from ccop_plugin.apis.main_job import MainJobConfig
from ccop_plugin.apis.tables import AP_KEYS

LABELS = [label for label, _ in AP_KEYS]
EXPECTED = dict(record='r.json', runs=3,
                range={'bbox AP': (8.0, 13.0), 'mask AP': (6.0, 10.0)},
                reference=dict(machine='CPU X', run_seed=0,
                               values={'bbox AP': 12.6, 'mask AP': 9.2}))


def _metrics(bbox, segm):
    return {'coco/bbox_mAP': bbox, 'coco/segm_mAP': segm}


def test_the_range_is_for_the_demo_settings():
    cfg = MainJobConfig()
    assert {k: getattr(cfg, k) for k in DEMO_SETTINGS} == DEMO_SETTINGS


def test_report_says_within_or_outside_the_range():
    cfg = MainJobConfig()
    text = '\n'.join(expectation_lines(cfg, _metrics(0.087, 0.066),
                                       EXPECTED))
    assert '**Within the expected range**' in text
    assert 'bbox AP 8.0 to 13.0' in text and 'CPU X' in text
    text = '\n'.join(expectation_lines(cfg, _metrics(0.031, 0.066),
                                       EXPECTED))
    assert '**Outside the expected range:** bbox AP 3.1' in text
    # another run seed is inside the range's scope, other data is not
    other = expectation_lines(replace(cfg, run_seed=5),
                              _metrics(0.1, 0.07), EXPECTED)
    assert any('Within' in line for line in other)
    text = '\n'.join(expectation_lines(replace(cfg, pretrain_iters=100),
                                       _metrics(0.1, 0.07), EXPECTED))
    assert 'No expected range' in text and 'pretrain_iters=100' in text


def _fake_run(work_dir, seed, bbox):
    sfx = '' if seed == 0 else f'_seed{seed}'
    metrics = {key: bbox for _, key in AP_KEYS}
    for st, rec in (('pretrain', dict(settings=dict(iters=200, batch=16),
                                      seconds=10.0)),
                    ('finetune', dict(metrics=metrics, seconds=5.0,
                                      machine='CPU X'))):
        d = osp.join(work_dir, f'{st}_ccop{sfx}')
        import os
        os.makedirs(d, exist_ok=True)
        with open(osp.join(d, 'stage.json'), 'w') as f:
            json.dump(rec, f)


def test_spread_record_round_trip_and_refusals(tmp_path):
    wd = str(tmp_path / 'native')
    _fake_run(wd, 0, 0.126)
    _fake_run(wd, 1, 0.101)
    with pytest.raises(ValueError, match='has not finished'):
        read_run(wd, 2, 'native')
    runs = [read_run(wd, s, 'native') for s in (0, 1)]
    assert runs[0]['values'] == {label: 12.6 for label in LABELS}
    assert runs[1]['machine'] == 'CPU X'
    path = str(tmp_path / 'spread.json')
    write_spread_record(path, dict(command='x', reference_isa='native'),
                        runs)
    record = read_spread_record(path)
    exp = expected_from_record(record, 'spread.json')
    assert exp['runs'] == 2 and exp['range']['bbox AP'] == (10.1, 12.6)
    assert exp['reference']['values']['mask AP'] == 12.6
    assert '| native | 1 | 10.1 |' in spread_markdown(record)
    # another file at the path is never overwritten
    other = tmp_path / 'other.json'
    other.write_text('{"a": 1}')
    with pytest.raises(FileExistsError, match='other.json'):
        write_spread_record(str(other), {}, runs)
    assert other.read_text() == '{"a": 1}'


def test_stored_range_is_the_record():
    """The range the report uses is the one the spread tool recorded."""
    from ccop_plugin.apis.demo_range import DEMO_EXPECTED
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    path = DEMO_EXPECTED['record']
    record = read_spread_record(osp.join(root, path))
    assert expected_from_record(record, path) == DEMO_EXPECTED
