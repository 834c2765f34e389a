"""docs/benchmarks/performance.json: one writer, merge per section, refusals
(fake numbers, no measurement)."""
import json
import math
import os

import pytest

from ccop_plugin.utils.performance_record import (
    PerformanceRecordError,
    read_performance_record,
    update_performance_record,
    validate_performance_record,
)

FP32 = dict(mocov2_img_s=861.0, ccop_img_s=465.0, mocov2_peak_gib=3.33,
            ccop_peak_gib=4.93)
BF16 = dict(mocov2_img_s=833.0, ccop_img_s=512.0, mocov2_peak_gib=2.01,
            ccop_peak_gib=3.27)
CPU = dict(device='CPU x', mocov2_img_s=3.5, ccop_img_s=1.8,
           ccop_over_mocov2=1.92, load_average=[9.5, 10.2],
           setting='ResNet-18, batch 8, 128 px', command='python ...')
SS = dict(device='CPU x, 2 cores', two_core_speedup_full_res=1.8,
          sec_per_image_full_res=3.15,
          workers_speedup={'1': 1.0, '2': 1.8, '16': 9.4})


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
    ('gpu', dict(device='H100', fp32=FP32, bf16=None), 'gpu.bf16'),
    ('gpu', dict(device='H100', fp16=FP32), "'fp16'"),
    ('gpu', dict(device='H100', fp32=dict(FP32, ccop_peak_gib=None)),
     'gpu.fp32.ccop_peak_gib'),
    ('selective_search', dict(SS, workers_speedup={'one': 1.0}), "'one'"),
    ('selective_search', dict(SS, workers_speedup={'1': 2.0}),
     'must be 1.0'),
    ('selective_search', dict(device='x', sec_per_image_full_res=1.0),
     'at least one'),
    ('disk', dict(x=1), "unknown section 'disk'"),
])
def test_bad_values_are_refused_and_nothing_written(tmp_path, section,
                                                    values, match):
    path = str(tmp_path / 'performance.json')
    update_performance_record(path, 'gpu', dict(device='H100', fp32=FP32))
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


def test_selective_search_groups_merge_from_separate_runs(tmp_path):
    path = str(tmp_path / 'performance.json')
    two = dict(device='VM', two_core_speedup_full_res=1.8,
               sec_per_image_full_res=3.1, two_core_command='taskset ...',
               two_core_load_average=[0.5, 1.5])
    sweep = dict(device='VM', workers_speedup={'1': 1.0, '16': 9.4},
                 sweep_command='python ...', sweep_load_average=[1., 2.])
    update_performance_record(path, 'selective_search', two)
    rec = update_performance_record(path, 'selective_search', sweep)
    assert rec['selective_search'] == dict(two, **sweep)
    # a new 2-core run replaces its group only
    rec = update_performance_record(path, 'selective_search', dict(
        device='VM', two_core_speedup_full_res=1.7))
    assert rec['selective_search'] == dict(
        sweep, two_core_speedup_full_res=1.7)
    with pytest.raises(PerformanceRecordError, match='two machines'):
        update_performance_record(path, 'selective_search', dict(
            device='other', two_core_speedup_full_res=1.9))


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


def test_validate_accepts_a_full_record():
    validate_performance_record(dict(
        gpu=dict(device='NVIDIA H100', fp32=FP32, bf16=BF16),
        cpu=dict(device='cpu', mocov2_img_s=1., ccop_img_s=0.5),
        selective_search=dict(two_core_speedup_full_res=1.8,
                              workers_speedup={'1': 1.0, '2': 1.8})))
    validate_performance_record({})


# ------------------------------------------------- tools/benchmark_pretrain.py
def _pretrain_main(argv):
    """What ``tools/benchmark_pretrain.py`` runs, from the package."""
    from ccop_plugin.benchmarks import pretrain_step as ps
    return ps.run_pretrain_benchmark(ps.parse_args(argv),
                                     ps.command_line(argv))


def _selective_search_main(argv):
    """What ``tools/benchmark_selective_search.py`` runs, from the
    package."""
    from ccop_plugin.benchmarks import selective_search as ssb
    return ssb.run_selective_search_benchmark(
        ssb.parse_args(argv),
        ssb.command_line('tools/benchmark_selective_search.py', argv))


@pytest.mark.slow
def test_pretrain_benchmark_records_interleaved_steps(tmp_path, capsys):
    """A tiny CPU run: both models' steps timed in one process, the median
    ratio and the load average in the table, the cpu section recorded."""
    path = str(tmp_path / 'performance.json')
    update_performance_record(path, 'selective_search', SS)
    rc = _pretrain_main(['--device', 'cpu', '--depth', '18', '--batch', '2',
                         '--size', '32', '--boxes', '2', '--iters', '2',
                         '--warmup', '0', '--queue-len', '64',
                         '--no-profile', '--pipeline-images', '0',
                         '--count-flops', '--record', path])
    out = capsys.readouterr().out
    assert rc == 0
    # the arithmetic: CCOP does more than MoCo v2 (FPNs, RoI MLPs), the
    # key encoder is counted, and the record holds the per-image figures
    assert 'GFLOP / step' in out and 'ObjectRoINeck' in out
    assert 'Steps interleaved (2 timed of each' in out
    assert 'load average' in out
    rec = read_performance_record(path)
    assert rec['selective_search'] == SS
    cpu = rec['cpu']
    assert cpu['setting'].startswith('ResNet-18, batch 2, 32 px')
    assert math.isclose(cpu['ccop_over_mocov2'],
                        cpu['ccop_step_s'] / cpu['mocov2_step_s'])
    assert math.isclose(cpu['ccop_img_s'], 2 / cpu['ccop_step_s'])
    assert '--record' in cpu['command']
    assert cpu['ccop_over_mocov2_flops'] > 1
    assert math.isclose(cpu['ccop_over_mocov2_flops'],
                        cpu['ccop_gflop_per_img'] /
                        cpu['mocov2_gflop_per_img'])


def test_pretrain_benchmark_refuses_a_broken_record_before_measuring(
        tmp_path, capsys):
    path = tmp_path / 'performance.json'
    path.write_text('{"cpu": 1}')
    with pytest.raises(PerformanceRecordError,
                       match=f'^{path}: cpu must be'):
        _pretrain_main(['--device', 'cpu', '--pipeline-images', '0',
                        '--record', str(path)])
    assert capsys.readouterr().out == ''  # refused before measuring
    assert path.read_text() == '{"cpu": 1}'


@pytest.mark.slow  # runs the tool as a Python process
def test_pretrain_benchmark_tool_maps_a_broken_record_to_exit_1(tmp_path):
    """The tool turns the library's refusal into one line and exit 1."""
    import subprocess
    import sys
    path = tmp_path / 'performance.json'
    path.write_text('{"cpu": 1}')
    tool = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), 'tools', 'benchmark_pretrain.py')
    proc = subprocess.run(
        [sys.executable, tool, '--device', 'cpu', '--pipeline-images', '0',
         '--record', str(path)], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith(f'error: {path}: cpu must be') and '\n' not in err
    assert proc.stdout == ''


def test_pretrain_benchmark_gpu_values_follow_the_schema(monkeypatch):
    from ccop_plugin.benchmarks import pretrain_report
    from ccop_plugin.benchmarks import pretrain_step as ps
    monkeypatch.setattr(pretrain_report, 'device_name',
                        lambda d: 'NVIDIA H200')
    args = ps.parse_args(['--device', 'cuda', '--amp', '--boxes', '16'])
    models = [dict(name='mocov2', step_s=0.04, img_per_s=800.,
                   peak_mem_gib=2.0),
              dict(name='ccop', step_s=0.05, img_per_s=640.,
                   peak_mem_gib=3.2)]
    section, values = ps.record_values(args, models, (1.0, 2.0), 'cmd')
    assert section == 'gpu' and values['device'] == 'NVIDIA H200'
    validate_performance_record({section: values})
    assert values['bf16']['ccop_peak_gib'] == 3.2
    assert math.isclose(values['bf16']['ccop_over_mocov2'], 1.25)
    assert ps.workers_needed(640., 40.7) == 16


@pytest.mark.parametrize('device,amp,peak', [
    ('NVIDIA H100 80GB HBM3', True, 989.5),
    ('NVIDIA H100 80GB HBM3', False, 494.5),  # TF32: cuDNN's default
    ('NVIDIA H100 PCIe', True, 756.0),
    ('NVIDIA H200', True, 989.5),
    ('NVIDIA H200 NVL', False, 417.5),
    ('Some Future GPU', True, None),
])
def test_flop_utilisation_reads_the_datasheet_peak(device, amp, peak):
    from ccop_plugin.benchmarks import pretrain_report
    from ccop_plugin.benchmarks import pretrain_step as ps
    args = ps.parse_args(['--device', 'cuda'] + (['--amp'] if amp else []))
    assert pretrain_report.peak_tflops(args, device) == peak
    # a given peak wins; a CPU has none unless given
    args = ps.parse_args(['--device', 'cuda', '--peak-tflops', '100'])
    assert pretrain_report.peak_tflops(args, device) == 100.
    args = ps.parse_args(['--device', 'cpu'])
    assert pretrain_report.peak_tflops(args, 'CPU x') is None


def test_pretrain_benchmark_refuses_a_peak_that_is_not_positive(capsys):
    from ccop_plugin.benchmarks import pretrain_step as ps
    with pytest.raises(SystemExit):
        ps.parse_args(['--peak-tflops', '0'])
    assert '--peak-tflops must be > 0, got 0.0' in capsys.readouterr().err


def test_pretrain_benchmark_records_flop_utilisation(monkeypatch):
    """Counted FLOPs / median step / the device's dense peak, per model,
    printed and in the gpu section with the peak it was read against."""
    from ccop_plugin.benchmarks import pretrain_report
    from ccop_plugin.benchmarks import pretrain_step as ps
    monkeypatch.setattr(pretrain_report, 'device_name',
                        lambda d: 'NVIDIA H100 80GB HBM3')
    args = ps.parse_args(['--device', 'cuda', '--amp', '--boxes', '16',
                          '--channels-last'])
    # 32 images of 65 GFLOP in 0.0625 s: 33.28 TFLOP/s, 3.4 % of 989.5
    models = [dict(name='mocov2', step_s=0.04, step_min_s=0.04,
                   step_max_s=0.04, img_per_s=800., peak_mem_gib=2.0,
                   gflop=32 * 32.5, gflop_parts={}),
              dict(name='ccop', step_s=0.0625, step_min_s=0.06,
                   step_max_s=0.07, img_per_s=512., peak_mem_gib=3.2,
                   gflop=32 * 65.0, gflop_parts={})]
    section, values = ps.record_values(args, models, (1.0, 1.0), 'cmd')
    validate_performance_record({section: values})
    bf16 = values['bf16']
    assert bf16['peak_tflops'] == 989.5
    assert math.isclose(bf16['ccop_mfu'], 32 * 65e9 / 0.0625 / 989.5e12)
    assert math.isclose(bf16['mocov2_mfu'], 32 * 32.5e9 / 0.04 / 989.5e12)
    assert bf16['setting'].endswith('bf16 autocast, channels-last')
    md = ps.to_markdown(args, models, [], (1.0, 1.0), 'cmd')
    assert ('FLOP utilisation (counted FLOPs / median step / 989.5 TFLOP/s '
            'peak): mocov2 2.6%, ccop 3.4%.') in md


@pytest.mark.slow
def test_step_levers_keep_the_losses(tmp_path):
    """The channels-last and compile levers change the memory format and
    the execution only: the first step's losses of both models equal the
    default's (compile with torch's eager backend: no compiler on CI; 64
    px and 4 images: at 32 px and 2 the 1 x 1 C5 maps under batch norm
    amplify the kernels' rounding to 3e-4)."""
    from ccop_plugin.benchmarks import pretrain_step as ps
    losses = {}
    levers = ([], ['--channels-last'], ['--compile', 'eager'])
    for lever in levers:
        args = ps.parse_args(
            ['--device', 'cpu', '--depth', '18', '--batch', '4', '--size',
             '64', '--boxes', '2', '--iters', '1', '--warmup', '0',
             '--queue-len', '64', '--no-profile', '--pipeline-images', '0']
            + lever)
        results = ps.bench_models(args)
        # no warm-up, one step: the first step's losses are the step's
        assert all(r['first_losses'] == r['losses'] for r in results)
        losses[' '.join(lever)] = {r['name']: r['first_losses']
                                   for r in results}
    from ccop_plugin.benchmarks.pretrain_report import setting
    assert setting(args).endswith('fp32, ResNets compiled (eager)')
    for lever in levers[1:]:
        for name in ('mocov2', 'ccop'):
            for key, value in losses[''][name].items():
                assert math.isclose(losses[' '.join(lever)][name][key],
                                    value, rel_tol=1e-4), (lever, name, key)



def _fake_step_run(monkeypatch, scale=1.0):
    """bench_models replaced by two models whose first-step losses are the
    given multiples of fixed values; returns the calls' count."""
    from ccop_plugin.benchmarks import pretrain_step as ps
    calls = []

    def bench(args):
        calls.append(args)
        return [dict(name=n, step_s=s, img_per_s=args.batch / s,
                     step_min_s=s, step_max_s=s, losses={},
                     first_losses={k: v * scale for k, v in ls.items()})
                for n, s, ls in (
                    ('mocov2', 0.1, dict(loss=5.0)),
                    ('ccop', 0.2, dict(loss_img=5.0, loss_roi=4.0)))]
    monkeypatch.setattr(ps, 'bench_models', bench)
    return calls


def _step_args(*extra):
    from ccop_plugin.benchmarks import pretrain_step as ps
    return ps.parse_args(['--device', 'cpu', '--depth', '18', '--batch', '4',
                          '--boxes', '2', '--pipeline-images', '0',
                          '--no-profile', *extra])


def test_check_losses_compares_first_steps_with_a_reference(
        tmp_path, monkeypatch, capsys):
    """Issue 24's numerics check: a lever's run reads an earlier --out run's
    first-step losses and states each model's largest relative difference
    against the precision's tolerance (table and JSON)."""
    from ccop_plugin.benchmarks import pretrain_step as ps
    from ccop_plugin.benchmarks.pretrain_report import LOSS_RTOL
    ref = tmp_path / 'fp32.md'
    _fake_step_run(monkeypatch)
    ps.run_pretrain_benchmark(_step_args('--out', str(ref)), 'cmd')
    for scale, verdict in ((1 + LOSS_RTOL['fp32'] / 2, 'within'),
                           (1.01, 'OUTSIDE')):
        _fake_step_run(monkeypatch, scale)
        out = tmp_path / f'{scale}.md'
        ps.run_pretrain_benchmark(_step_args(
            '--channels-last', '--check-losses', str(ref.with_suffix('.json')),
            '--out', str(out)), 'cmd')
        md = out.read_text()
        assert 'mocov2 max relative difference' in md
        assert md.count(f', {verdict})') == 2, md
        check = json.loads(out.with_suffix('.json').read_text())['loss_check']
        assert math.isclose(check['models']['ccop']['max_rel_diff'],
                            scale - 1, rel_tol=1e-6)
        assert check['rtol'] == LOSS_RTOL['fp32']
        assert check['models']['mocov2']['within'] == (verdict == 'within')


def test_check_losses_keeps_the_run_when_a_loss_is_in_one_run_only(
        tmp_path, monkeypatch):
    """A reference of the same setting but other loss names (e.g. written
    by an older model) fails the check in the table; the measurement is
    still written."""
    from ccop_plugin.benchmarks import pretrain_step as ps
    ref = tmp_path / 'ref.md'
    _fake_step_run(monkeypatch)
    ps.run_pretrain_benchmark(_step_args('--out', str(ref)), 'cmd')
    data = json.loads(ref.with_suffix('.json').read_text())
    data['models'][1]['first_losses'] = dict(loss_img=5.0, loss_old=1.0)
    ref.with_suffix('.json').write_text(json.dumps(data))
    out = tmp_path / 'lever.md'
    ps.run_pretrain_benchmark(_step_args(
        '--check-losses', str(ref.with_suffix('.json')), '--out', str(out)),
        'cmd')
    md = out.read_text()
    assert 'ccop losses not in both runs: loss_old, loss_roi (OUTSIDE)' in md
    assert 'mocov2 max relative difference 0.0e+00 (loss, within)' in md
    check = json.loads(out.with_suffix('.json').read_text())['loss_check']
    assert check['models']['ccop']['within'] is False


@pytest.mark.parametrize('content,expected', [
    (None, 'not the JSON of a --out run'),
    ('{"models": []}', 'not the JSON of a --out run'),
    ('bf16', 'another setting than this run (amp True there, False here)'),
])
def test_check_losses_refuses_a_reference_it_cannot_compare(
        tmp_path, monkeypatch, content, expected):
    """A missing or foreign file, or a run of another precision, is refused
    with one line naming the file, before anything is measured."""
    from ccop_plugin.benchmarks import pretrain_step as ps
    ref = tmp_path / 'ref.json'
    if content == 'bf16':
        _fake_step_run(monkeypatch)
        ps.run_pretrain_benchmark(
            _step_args('--amp', '--out', str(ref.with_suffix('.md'))), 'c')
    elif content is not None:
        ref.write_text(content)
    calls = _fake_step_run(monkeypatch)
    with pytest.raises(ps.LossCheckError) as err:
        ps.run_pretrain_benchmark(
            _step_args('--check-losses', str(ref)), 'cmd')
    msg = str(err.value)
    assert msg.startswith(f'{ref}: ') and expected in msg, msg
    assert '\n' not in msg and calls == []

# ----------------------------------------- tools/benchmark_selective_search.py
def test_selective_search_benchmark_records_its_section(tmp_path, capsys):
    path = str(tmp_path / 'performance.json')
    update_performance_record(path, 'cpu', CPU)
    rc = _selective_search_main(
        ['--num-images', '1', '--size', '96x72', '--workers', '2',
         '--max-sizes', '48', '--no-unscaled-k',
         '--sweep-workers', '2', '64', '--record', path])
    out = capsys.readouterr().out
    assert rc == 0 and 'Worker sweep at full resolution' in out
    rec = read_performance_record(path)
    assert rec['cpu'] == CPU
    ss = rec['selective_search']
    assert set(ss['workers_speedup']) <= {'1', '2'}  # 64 > cores: skipped
    assert ss['workers_speedup']['1'] == 1.0
    assert '--sweep-workers' in ss['sweep_command']
    if len(os.sched_getaffinity(0)) == 2:  # the 2-core figure: 2 cores only
        assert ss['two_core_speedup_full_res'] > 0
        assert ss['sec_per_image_full_res'] > 0
    else:
        assert 'two_core_speedup_full_res' not in ss


def test_selective_search_benchmark_refuses_before_measuring(tmp_path,
                                                             capsys):
    from ccop_plugin.benchmarks import selective_search as ssb
    path = tmp_path / 'performance.json'
    path.write_text('{"selective_search": {"workers_speedup": {}}}')
    with pytest.raises(PerformanceRecordError, match=f'^{path}: '):
        _selective_search_main(['--workers', '2', '--sweep-workers', '1',
                                '--record', str(path)])
    assert capsys.readouterr().out == ''  # refused before measuring
    with pytest.raises(SystemExit):  # 3 workers, no sweep: nothing to record
        ssb.parse_args(['--workers', '3', '--record', str(path)])
    assert 'nothing to record' in capsys.readouterr().err


def test_cpu_device_name_counts_usable_or_machine_cores():
    from ccop_plugin.utils.performance_record import cpu_device_name
    assert cpu_device_name().endswith(
        f', {len(os.sched_getaffinity(0))} cores')
    assert cpu_device_name(usable_cores=False).endswith(
        f', {os.cpu_count()} cores')


def test_load_note_warns_only_when_the_cores_were_shared():
    from ccop_plugin.utils.performance_record import load_note
    assert load_note(0.0) == ''
    note = load_note(1000.0)
    assert note.startswith('warning: load average 1000.0') and '\n' not in note


def test_a_gpu_section_needs_a_precision():
    with pytest.raises(PerformanceRecordError, match='fp32, bf16'):
        validate_performance_record(dict(gpu=dict(device='H100')))


def test_every_measurement_can_name_its_machine(tmp_path):
    """A figure of another processor is not comparable: each measured block
    carries the machine line (CPU model, torch CPU capability, threads)."""
    from ccop_plugin.utils.machine import machine_summary
    path = str(tmp_path / 'performance.json')
    here = machine_summary()
    rec = update_performance_record(path, 'cpu', dict(CPU, machine=here))
    assert rec['cpu']['machine'] == here
    rec = update_performance_record(
        path, 'gpu', dict(device='H100', fp32=dict(FP32, machine=here)))
    assert rec['gpu']['fp32']['machine'] == here
    rec = update_performance_record(path, 'selective_search', dict(
        SS, two_core_machine=here, sweep_machine=here))
    assert rec['selective_search']['sweep_machine'] == here
    # a new sweep replaces its own machine line and keeps the 2-core one
    rec = update_performance_record(path, 'selective_search', dict(
        device=SS['device'], workers_speedup={'1': 1.0, '2': 1.9}))
    assert 'sweep_machine' not in rec['selective_search']
    assert rec['selective_search']['two_core_machine'] == here
    with pytest.raises(PerformanceRecordError, match='cpu.machine'):
        update_performance_record(path, 'cpu', dict(CPU, machine=''))
