"""The machine-readable performance record.

File: ``docs/benchmarks/performance.json``.

One owner of the file: the benchmark tools (``tools/benchmark_pretrain.py
--record``, ``tools/benchmark_selective_search.py --record``) write it only
through :func:`update_performance_record`, never by hand. The record::

    {"gpu": {"device": "...",
             "fp32": {"mocov2_img_s": x, "ccop_img_s": y,
                      "mocov2_peak_gib": a, "ccop_peak_gib": b},
             "bf16": {...}},
     "cpu": {"device": "...", "mocov2_img_s": x, "ccop_img_s": y},
     "selective_search": {"two_core_speedup_full_res": s,
                          "workers_speedup": {"1": 1.0, "2": ..., "16": ...}}}

Every section is optional; a section (and ``gpu.fp32`` / ``gpu.bf16``) holds
the required keys above and may hold the optional ones of :data:`SCHEMA`
(the setting, the command and the load average it was measured under).
Numbers are finite and positive. An update writes one section and leaves the
others untouched; it refuses to mix measurements of two machines in one
section (``gpu.fp32`` and ``gpu.bf16``, or the 2-core speed-up and the worker
sweep, from different devices).
"""
import json
import math
import os
import os.path as osp
from typing import Any, Dict

from .fileio import atomic_write_json
from .machine import cpu_model

__all__ = ['GROUPS', 'SCHEMA', 'PerformanceRecordError', 'cpu_device_name',
           'load_note',
           'read_performance_record', 'update_performance_record',
           'validate_performance_record']

_NUM, _STR, _LOAD, _WORKERS = 'number', 'string', 'load', 'workers'

#: optional keys allowed in every measured block; ``machine`` is
#: :func:`ccop_plugin.utils.machine.machine_summary` of the measuring process
#: (CPU model and id, torch CPU capability, threads, GPU)
_PROVENANCE = dict(setting=_STR, command=_STR, load_average=_LOAD,
                   machine=_STR)
_STEP = dict(mocov2_img_s=_NUM, ccop_img_s=_NUM)
#: optional: the step's arithmetic (``benchmark_pretrain.py --count-flops``)
_FLOPS = dict(mocov2_gflop_per_img=_NUM, ccop_gflop_per_img=_NUM,
              ccop_over_mocov2_flops=_NUM,
              # FLOP utilisation against this dense peak (TFLOP/s)
              peak_tflops=_NUM, mocov2_mfu=_NUM, ccop_mfu=_NUM)
_GPU_PRECISION = dict(required=dict(_STEP, mocov2_peak_gib=_NUM,
                                    ccop_peak_gib=_NUM),
                      optional=dict(_PROVENANCE, **_FLOPS,
                                    ccop_over_mocov2=_NUM))

#: section -> required / optional keys and their kinds
SCHEMA: Dict[str, Dict[str, Dict[str, Any]]] = dict(
    gpu=dict(required=dict(device=_STR),
             optional=dict(fp32=_GPU_PRECISION, bf16=_GPU_PRECISION),
             one_of=('fp32', 'bf16')),
    cpu=dict(required=dict(device=_STR, **_STEP),
             optional=dict(_PROVENANCE, **_FLOPS, ccop_over_mocov2=_NUM,
                           mocov2_step_s=_NUM, ccop_step_s=_NUM)),
    selective_search=dict(
        required=dict(),
        optional=dict(device=_STR, two_core_speedup_full_res=_NUM,
                      sec_per_image_full_res=_NUM,
                      two_core_command=_STR, two_core_load_average=_LOAD,
                      two_core_machine=_STR,
                      workers_speedup=_WORKERS,
                      sweep_command=_STR, sweep_load_average=_LOAD,
                      sweep_machine=_STR),
        one_of=('two_core_speedup_full_res', 'workers_speedup')),
)

#: sections whose measurements come from separate runs: the keys of each
#: group are written together; an update of one group keeps the others
#: (which must then be from the same device). Other sections are replaced.
GROUPS = dict(
    gpu=(('fp32', ), ('bf16', )),
    selective_search=(
        ('two_core_speedup_full_res', 'sec_per_image_full_res',
         'two_core_command', 'two_core_load_average', 'two_core_machine'),
        ('workers_speedup', 'sweep_command', 'sweep_load_average',
         'sweep_machine')),
)


def cpu_device_name(usable_cores: bool = True) -> str:
    """The ``device`` string of a CPU measurement: model name and cores,
    e.g. ``'AMD EPYC 7B13, 2 cores'``.

    Args:
        usable_cores (bool): Count the cores this process may use (its
            affinity; what a step benchmark ran on). False counts the
            machine's, so runs pinned to a subset name the same machine.
    """
    name = cpu_model()['name']
    cores = os.cpu_count()
    if usable_cores and hasattr(os, 'sched_getaffinity'):
        cores = len(os.sched_getaffinity(0))
    return f'{name}, {cores} cores'


def load_note(load_average: float) -> str:
    """A warning line when other jobs occupy the cores ('' otherwise).

    A load average above the cores this process may use means the run shared
    them: step ratios measured interleaved stay comparable, but speed-ups
    from more workers then measure the other jobs as much as the tool.
    """
    cores = len(os.sched_getaffinity(0))
    if load_average <= cores:
        return ''
    return (f'warning: load average {load_average:.1f} at start exceeds the '
            f'{cores} cores available: other jobs shared them, so absolute '
            'rates and speed-ups from more workers are not the machine\'s')


class PerformanceRecordError(ValueError):
    """A record (or an update) that does not follow :data:`SCHEMA`."""


def _check_value(kind, value, where: str) -> None:
    if isinstance(kind, dict):
        _check_block(kind, value, where)
    elif kind == _STR:
        if not isinstance(value, str) or not value.strip():
            raise PerformanceRecordError(f'{where} must be a non-empty '
                                         f'string, got {value!r}')
    elif kind == _NUM:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise PerformanceRecordError(f'{where} must be a finite '
                                         f'positive number, got {value!r}')
    elif kind == _LOAD:
        if (not isinstance(value, list) or len(value) != 2 or any(
                isinstance(v, bool) or not isinstance(v, (int, float))
                or not math.isfinite(v) or v < 0 for v in value)):
            raise PerformanceRecordError(
                f'{where} must be [load at start, load at end] (finite, '
                f'>= 0), got {value!r}')
    elif kind == _WORKERS:
        if not isinstance(value, dict) or not value:
            raise PerformanceRecordError(f'{where} must be a non-empty '
                                         f'object, got {value!r}')
        for k, v in value.items():
            if not (isinstance(k, str) and k.isdigit() and int(k) > 0
                    and str(int(k)) == k):
                raise PerformanceRecordError(
                    f'{where} has key {k!r}; keys are worker counts '
                    '("1", "2", ...)')
            _check_value(_NUM, v, f'{where}.{k}')
        if '1' in value and not math.isclose(value['1'], 1.0):
            raise PerformanceRecordError(
                f'{where}.1 must be 1.0 (speed-ups are relative to one '
                f'worker), got {value["1"]!r}')
    else:  # pragma: no cover
        raise AssertionError(kind)


def _check_block(spec: Dict, block, where: str) -> None:
    if not isinstance(block, dict):
        raise PerformanceRecordError(f'{where} must be an object, got '
                                     f'{type(block).__name__}')
    allowed = {**spec['required'], **spec.get('optional', {})}
    unknown = sorted(set(block) - set(allowed))
    if unknown:
        raise PerformanceRecordError(
            f'{where} has unknown key(s) {", ".join(map(repr, unknown))} '
            f'(allowed: {", ".join(sorted(allowed))})')
    missing = [k for k in spec['required'] if k not in block]
    if missing:
        raise PerformanceRecordError(
            f'{where} lacks {", ".join(map(repr, missing))}')
    one_of = spec.get('one_of')
    if one_of and not any(k in block for k in one_of):
        raise PerformanceRecordError(
            f'{where} needs at least one of {", ".join(one_of)}')
    for key, value in block.items():
        _check_value(allowed[key], value, f'{where}.{key}')


def validate_performance_record(record) -> None:
    """Raise :class:`PerformanceRecordError` unless ``record`` follows
    :data:`SCHEMA` (one line, naming the offending key)."""
    if not isinstance(record, dict):
        raise PerformanceRecordError(
            f'not a performance record (a JSON object with sections '
            f'{", ".join(SCHEMA)}), got {type(record).__name__}')
    unknown = sorted(set(record) - set(SCHEMA))
    if unknown:
        raise PerformanceRecordError(
            f'unknown section(s) {", ".join(map(repr, unknown))} (allowed: '
            f'{", ".join(SCHEMA)})')
    for section, block in record.items():
        _check_block(SCHEMA[section], block, section)


def read_performance_record(path: str) -> Dict:
    """The record at ``path`` ({} when the file does not exist).

    Raises:
        PerformanceRecordError: The file is not valid JSON or not a record
            (the message names the file).
    """
    if not osp.exists(path):
        return {}
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PerformanceRecordError(
            f'{path}: not a performance record ({e})') from None
    try:
        validate_performance_record(record)
    except PerformanceRecordError as e:
        raise PerformanceRecordError(f'{path}: {e}') from None
    return record


def update_performance_record(path: str, section: str,
                              values: Dict) -> Dict:
    """Merge ``values`` into one section of the record at ``path``.

    ``cpu`` is replaced as a whole (one run measures all of it, with its
    provenance). ``gpu`` and ``selective_search`` hold measurements of
    separate runs (:data:`GROUPS`: ``gpu.fp32`` / ``gpu.bf16``; the 2-core
    speed-up / the worker sweep): an update replaces the groups it writes and
    keeps the others, which must be from the same ``device``. All other
    sections stay as they are. The file is
    created if missing and replaced atomically (a temporary file in the same
    folder, then ``os.replace``), so a crash never leaves half a record.

    Args:
        path (str): The record, e.g. ``docs/benchmarks/performance.json``.
        section (str): ``'gpu'``, ``'cpu'`` or ``'selective_search'``.
        values (dict): The section's new keys.

    Returns:
        dict: The whole record as written.

    Raises:
        PerformanceRecordError: The file exists but is not a record, the
            merged section would not follow :data:`SCHEMA` (unknown key,
            non-finite number, ...), or it would keep figures of another
            ``device``. One line that names the file; nothing is written.
    """
    if section not in SCHEMA:
        raise PerformanceRecordError(
            f'{path}: unknown section {section!r} (allowed: '
            f'{", ".join(SCHEMA)})')
    if not isinstance(values, dict):
        raise PerformanceRecordError(
            f'{path}: the values for {section!r} must be a dict')
    record = read_performance_record(path)
    old = record.get(section, {})
    if section in GROUPS:
        # one group per run (gpu.fp32, the 2-core speed-up, ...): drop the
        # old keys of the groups this update writes, keep the others, which
        # must come from the same device
        touched = [g for g in GROUPS[section] if any(k in values for k in g)]
        drop = {k for g in touched for k in g}
        new = {k: v for k, v in old.items() if k not in drop}
        new.update(values)
        kept = [k for g in GROUPS[section] if g not in touched
                for k in g if k in old]
        if kept and old.get('device') != new.get('device'):
            raise PerformanceRecordError(
                f'{path}: {section}.{kept[0]} was measured on '
                f'{old.get("device")!r}; an update from '
                f'{new.get("device")!r} would mix two machines in one '
                f'section (write another record, or remove the {section} '
                'section first)')
    else:
        # a run measures the whole section: replace it, so no figure or
        # provenance of an older run stays behind
        new = dict(values)
    try:
        _check_block(SCHEMA[section], new, section)
    except PerformanceRecordError as e:
        raise PerformanceRecordError(f'{path}: {e}') from None
    record[section] = new
    atomic_write_json(path, record, indent=2, sort_keys=True)
    return record
