"""Where a run ran, precisely enough to reproduce it.

The one owner of the machine description that every record and report
carries (the main job's report and stages, ``science.json``, the sweep
record, ``performance.json``).

Why more than ``x86_64``: on CPU, torch picks its kernels at run time. ATen's
vectorised kernels (softmax, reductions, element-wise ops) follow the
*CPU capability* (``AVX512`` or ``AVX2`` on x86; ``ATEN_CPU_CAPABILITY``
lowers it), convolutions follow oneDNN's own ISA choice
(``ONEDNN_MAX_CPU_ISA`` lowers it) and matrix products MKL's
(``MKL_ENABLE_INSTRUCTIONS``). Two processors of one family can therefore
round differently in the last bit, and a few hundred training iterations
amplify that into a different AP. The thread count changes the order of
parallel sums too. :func:`machine_info` names all of it.
"""
import os
import platform
from typing import Dict, Optional

__all__ = ['ISA_VARIABLES', 'cpu_model', 'machine_info', 'machine_summary']

#: environment variables that cap the instruction set of torch's CPU kernels
ISA_VARIABLES = ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA',
                 'MKL_ENABLE_INSTRUCTIONS')

#: the /proc/cpuinfo flags that decide which kernels torch runs
_ISA_FLAGS = ('avx2', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'amx_tile')


def _cpuinfo(path: str = '/proc/cpuinfo') -> Dict[str, str]:
    """The first processor's fields of ``/proc/cpuinfo`` ({} elsewhere)."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(':')
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model(path: str = '/proc/cpuinfo') -> Dict:
    """The processor: ``name`` (model name), ``id`` (vendor, family, model
    and stepping, which tell apart processors that share a marketing name,
    e.g. ``AMD EPYC`` in a virtual machine) and ``isa`` (the vector
    extensions among avx2 / avx512f / avx512_bf16 / avx512_vnni / amx_tile
    that it has)."""
    info = _cpuinfo(path)
    name = (info.get('model name') or platform.processor()
            or platform.machine() or 'unknown CPU')
    ident = ' '.join(f'{k} {info[f]}' for k, f in (
        ('family', 'cpu family'), ('model', 'model'),
        ('stepping', 'stepping')) if info.get(f))
    vendor = info.get('vendor_id')
    if vendor:
        ident = f'{vendor} {ident}'.strip()
    flags = set(info.get('flags', '').split())
    return dict(name=name, id=ident or None,
                isa=[f for f in _ISA_FLAGS if f in flags] or None)


def _gpu() -> Optional[str]:
    import torch
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(torch.cuda.current_device())


def machine_info() -> Dict:
    """Where a run ran: the processor (:func:`cpu_model`), torch's CPU
    capability and the ISA caps forced through the environment, the thread
    and core counts, the GPU when CUDA is available, and the versions of
    Python, torch and the OpenMMLab stack."""
    import torch
    cpu = cpu_model()
    gpu = _gpu()
    info = dict(
        cpu_model=cpu['name'], cpu_id=cpu['id'], cpu_isa=cpu['isa'],
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
        forced_isa={k: os.environ[k] for k in ISA_VARIABLES
                    if os.environ.get(k)} or None,
        torch_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        gpu=gpu,
        device=f'cuda ({gpu})' if gpu else 'cpu',
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        python=platform.python_version(),
        torch=torch.__version__)
    if hasattr(os, 'sched_getaffinity'):
        info['cpus_usable'] = len(os.sched_getaffinity(0))
    for mod in ('mmengine', 'mmcv', 'mmdet', 'mmpretrain', 'ccop_plugin'):
        try:
            info[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            info[mod] = None
    return info


def machine_summary(info: Optional[Dict] = None) -> str:
    """One line naming the machine, e.g. ``'AMD EPYC (AuthenticAMD family
    25 model 17 stepping 1; avx2 avx512f), torch CPU capability AVX512, 2
    torch threads of 2 usable cores, no GPU; torch 2.13.0, mmcv 2.1.0'``.

    Args:
        info (dict, optional): A :func:`machine_info` (default: this
            process's).
    """
    info = info or machine_info()
    about = '; '.join(p for p in (info.get('cpu_id'),
                                  ' '.join(info.get('cpu_isa') or []))
                      if p)
    cpu = info.get('cpu_model') or 'unknown CPU'
    if about:
        cpu += f' ({about})'
    cap = f"torch CPU capability {info.get('torch_cpu_capability')}"
    forced = info.get('forced_isa')
    if forced:
        cap += ' (forced: ' + ', '.join(f'{k}={v}' for k, v in
                                        sorted(forced.items())) + ')'
    usable = info.get('cpus_usable', info.get('cpu_count'))
    threads = f"{info.get('torch_threads')} torch threads of {usable} " \
        'usable cores'
    gpu = f"GPU {info['gpu']}" if info.get('gpu') else 'no GPU'
    versions = ', '.join(f'{k} {info[k]}' for k in ('torch', 'mmcv')
                         if info.get(k))
    return f'{cpu}, {cap}, {threads}, {gpu}; {versions}'

