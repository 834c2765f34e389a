"""The machine description every record and report carries."""
import torch

from ccop_plugin.utils import machine
from ccop_plugin.utils.machine import (
    ISA_VARIABLES,
    cpu_model,
    machine_info,
    machine_summary,
)

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16

processor\t: 1
model name\t: Other CPU
"""


def test_cpu_model_names_the_processor_beyond_its_marketing_name(tmp_path):
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO)
    assert cpu_model(str(path)) == dict(
        name='AMD EPYC', id='AuthenticAMD family 25 model 17 stepping 1',
        isa=['avx2', 'avx512f', 'avx512_bf16'])
    # no /proc/cpuinfo (another OS): still a name, never an error
    other = cpu_model(str(tmp_path / 'missing'))
    assert other['name'] and other['id'] is None and other['isa'] is None


def test_machine_info_names_kernels_threads_and_forced_caps(monkeypatch):
    for k in ISA_VARIABLES:
        monkeypatch.delenv(k, raising=False)
    info = machine_info()
    assert info['torch_cpu_capability'] == \
        torch.backends.cpu.get_cpu_capability()
    assert info['torch_threads'] == torch.get_num_threads()
    assert info['forced_isa'] is None and info['cpu_model']
    assert info['gpu'] is None or torch.cuda.is_available()
    for mod in ('torch', 'mmcv', 'mmdet', 'mmpretrain', 'mmengine'):
        assert info[mod]
    line = machine_summary(info)
    assert info['cpu_model'] in line
    assert f"torch CPU capability {info['torch_cpu_capability']}" in line
    assert f"{info['torch_threads']} torch threads" in line
    assert 'forced' not in line

    # a cap set in the environment is named (it acts on a new process)
    monkeypatch.setenv('ATEN_CPU_CAPABILITY', 'avx2')
    forced = machine_info()
    assert forced['forced_isa'] == {'ATEN_CPU_CAPABILITY': 'avx2'}
    assert '(forced: ATEN_CPU_CAPABILITY=avx2)' in machine_summary(forced)


def test_summary_names_the_gpu_when_there_is_one(monkeypatch):
    monkeypatch.setattr(machine, '_gpu', lambda: 'NVIDIA H100 80GB HBM3')
    info = machine_info()
    assert info['device'] == 'cuda (NVIDIA H100 80GB HBM3)'
    assert 'GPU NVIDIA H100 80GB HBM3' in machine_summary(info)
