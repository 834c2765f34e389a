"""docs/benchmarks/performance.json: one writer, merge per section, refusals
(fake numbers, no measurement)."""
import json
import math

import pytest

from ccop_plugin.utils.performance_record import (
    PerformanceRecordError, read_performance_record,
    update_performance_record, validate_performance_record)

FP32 = dict(mocov2_img_s=861.0, ccop_img_s=465.0, mocov2_peak_gib=3.33,
            ccop_peak_gib=4.93)
BF16 = dict(mocov2_img_s=833.0, ccop_img_s=512.0, mocov2_peak_gib=2.01,
            ccop_peak_gib=3.27)
CPU = dict(device='CPU x', mocov2_img_s=3.5, ccop_img_s=1.8,
           ccop_over_mocov2=1.92, load_average=[9.5, 10.2],
           setting='ResNet-18, batch 8, 128 px', command='python ...')
SS = dict(two_core_speedup_full_res=1.8,
          workers_speedup={'1': 1.0, '2': 1.8, '16': 9.4},
          sec_per_image_full_res=3.15)


def test_sections_merge_and_leave_the_others(tmp_path):
    path = str(tmp_path / 'sub' / 'performance.json')
    update_performance_record(path, 'cpu', CPU)
    update_performance_record(path, 'gpu', dict(device='H100', fp32=FP32))
    update_performance_record(path, 'gpu', dict(device='H100', bf16=BF16))
    rec = update_performance_record(path, 'selective_search', SS)
    with open(path) as f:
        on_disk = json.load(f)
    assert on_disk == rec
    assert rec == dict(cpu=CPU, gpu=dict(device='H100', fp32=FP32, bf16=BF16),
                       selective_search=SS)
    # a new cpu run replaces the cpu section as a whole, nothing else
    cpu2 = dict(device='CPU y', mocov2_img_s=4.0, ccop_img_s=2.0)
    rec = update_performance_record(path, 'cpu', cpu2)
    assert rec['cpu'] == cpu2 and rec['gpu']['fp32'] == FP32
    assert rec['selective_search'] == SS
    assert read_performance_record(path) == rec
    # no temporary file left next to the record
    assert sorted(p.name for p in (tmp_path / 'sub').iterdir()) == [
        'performance.json']


@pytest.mark.parametrize('section,values,match', [
    ('cpu', dict(CPU, mocov2_img_s=float('nan')), 'cpu.mocov2_img_s'),
    ('cpu', dict(CPU, ccop_img_s=math.inf), 'finite'),
    ('cpu', dict(CPU, ccop_img_s=-1.0), 'positive'),
    ('cpu', dict(CPU, speed=1.0), "unknown key.*'speed'"),
    ('cpu', dict(device='x', ccop_img_s=1.0), "lacks 'mocov2_img_s'"),
    ('cpu', dict(CPU, load_average=[1.0]), 'load_average'),
    ('gpu', dict(device='H100'), 'fp32, bf16'),
    ('gpu', dict(device='H100', fp16=FP32), "'fp16'"),
    ('gpu', dict(device='H100', fp32=dict(FP32, ccop_peak_gib=None)),
     'gpu.fp32.ccop_peak_gib'),
    ('selective_search', dict(workers_speedup={'one': 1.0}), "'one'"),
    ('selective_search', dict(workers_speedup={'1': 2.0}), 'must be 1.0'),
    ('selective_search', dict(sec_per_image_full_res=1.0), 'at least one'),
    ('disk', dict(x=1), "unknown section 'disk'"),
])
def test_bad_values_are_refused_and_nothing_written(tmp_path, section,
                                                    values, match):
    path = str(tmp_path / 'performance.json')
    update_performance_record(path, 'selective_search', SS)
    before = open(path).read()
    with pytest.raises(PerformanceRecordError, match=match) as e:
        update_performance_record(path, section, values)
    msg = str(e.value)
    assert msg.startswith(path + ': ') and '\n' not in msg
    assert open(path).read() == before


@pytest.mark.parametrize('content', [
    '{not json', '[1, 2]', '{"results": {}}',
    json.dumps(dict(cpu=dict(CPU, mocov2_img_s='fast'))),
])
def test_a_file_that_is_not_a_record_is_refused(tmp_path, content):
    path = tmp_path / 'performance.json'
    path.write_text(content)
    with pytest.raises(PerformanceRecordError, match='performance.json') as e:
        update_performance_record(str(path), 'cpu', CPU)
    assert '\n' not in str(e.value)
    assert path.read_text() == content


def test_gpu_precisions_from_two_devices_are_not_mixed(tmp_path):
    path = str(tmp_path / 'performance.json')
    update_performance_record(path, 'gpu', dict(device='H100', fp32=FP32))
    with pytest.raises(PerformanceRecordError, match='two machines'):
        update_performance_record(path, 'gpu', dict(device='H200',
                                                    bf16=BF16))
    # replacing both precisions from the new device is fine
    rec = update_performance_record(path, 'gpu', dict(device='H200',
                                                      fp32=FP32, bf16=BF16))
    assert rec['gpu']['device'] == 'H200'


def test_validate_accepts_the_issue_example():
    validate_performance_record(dict(
        gpu=dict(device='NVIDIA H100', fp32=FP32, bf16=BF16),
        cpu=dict(device='cpu', mocov2_img_s=1., ccop_img_s=0.5),
        selective_search=dict(two_core_speedup_full_res=1.8,
                              workers_speedup={'1': 1.0, '2': 1.8})))
    validate_performance_record({})
