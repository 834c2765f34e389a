"""The demo's spread over run seeds and CPU instruction sets.

Record: ``docs/benchmarks/demo_spread.json``, written only by
:func:`write_spread_record` (``tools/demo_spread.py --record``)::

    {"protocol": {"writer": ..., "command": ..., "settings": {...},
                  "isa_modes": {"<mode>": {<environment caps>}},
                  "reference_isa": "native", "load_average": [start, end]},
     "runs": [{"isa": "<mode>", "run_seed": 0,
               "values": {"bbox AP": 12.6, ...},   # AP x100, 0.1
               "machine": "<machine_summary of the fine-tuning>",
               "pretrain_s": ..., "finetune_s": ...}, ...]}

:func:`expected_from_record` turns a record into the form of
:data:`ccop_plugin.apis.demo_range.DEMO_EXPECTED` (a test keeps the two
equal).
"""
import math
import os.path as osp
import statistics
from typing import Dict, List, Sequence

from ccop_plugin.utils.records import read_record, write_record
from .demo_range import DEMO_SETTINGS
from .job_config import MainJobConfig
from .tables import AP_KEYS

#: Instruction-set caps a run can be forced to (environment variables read
#: by torch when it loads, so they apply to a new process only):
#: ``native`` leaves the processor's best; ``aten-avx2`` caps ATen's
#: vectorised kernels (softmax, reductions, element-wise); ``avx2`` caps them
#: and oneDNN's convolutions and MKL's matrix products, which is what a
#: processor without AVX-512 runs.
ISA_MODES = {
    'native': {},
    'aten-avx2': {'ATEN_CPU_CAPABILITY': 'avx2'},
    'avx2': {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2',
             'MKL_ENABLE_INSTRUCTIONS': 'AVX2'},
}

SPREAD_WRITER = 'ccop_plugin.apis.demo_spread.write_spread_record'
_RUN_KEYS = ('isa', 'run_seed', 'values', 'machine', 'pretrain_s',
             'finetune_s')


def _read_stage(path: str) -> Dict:
    return read_record(path, lambda obj, p: None if isinstance(
        obj, dict) else _bad(p, 'not a stage record'))


def _bad(path: str, msg: str):
    raise ValueError(f'{path}: {msg}')


def read_run(work_dir: str, run_seed: int, isa: str) -> Dict:
    """One finished demo run of ``work_dir`` (run seed ``run_seed``) as a
    record's run: its AP x100, the machine that fine-tuned it and the
    seconds of its two training stages.

    Raises:
        ValueError: The run has not finished (the message names the missing
            stage file) or its settings are not the demo's.
    """
    cfg = MainJobConfig(work_dir=work_dir, run_seed=run_seed)
    sfx = cfg.stage_suffix
    stages = {}
    for st in ('pretrain', 'finetune'):
        path = osp.join(work_dir, f'{st}_ccop{sfx}', 'stage.json')
        if not osp.isfile(path):
            raise ValueError(f'{path}: missing; the run of seed {run_seed} '
                             'has not finished')
        stages[st] = _read_stage(path)
    pre = stages['pretrain']['settings']
    if (pre.get('iters'), pre.get('batch')) != (
            DEMO_SETTINGS['pretrain_iters'], DEMO_SETTINGS['pretrain_batch']):
        raise ValueError(f'{work_dir}: pre-training of {pre.get("iters")} '
                         f'x {pre.get("batch")} is not the demo\'s')
    metrics = stages['finetune']['metrics']
    return dict(isa=isa, run_seed=run_seed,
                values={label: round(100 * metrics[key], 1)
                        for label, key in AP_KEYS},
                machine=stages['finetune'].get('machine'),
                pretrain_s=stages['pretrain'].get('seconds'),
                finetune_s=stages['finetune'].get('seconds'))


def _check_record(obj, path: str) -> None:
    def bad(msg):
        raise ValueError(f'{path}: not a demo spread record: {msg}')
    if not isinstance(obj, dict) or set(obj) != {'protocol', 'runs'}:
        bad('expected exactly the keys "protocol" and "runs"')
    if not isinstance(obj['protocol'], dict):
        bad('"protocol" must be an object')
    runs = obj['runs']
    if not isinstance(runs, list) or not runs:
        bad('"runs" must be a non-empty list')
    labels = [label for label, _ in AP_KEYS]
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or set(r) != set(_RUN_KEYS):
            bad(f'runs[{i}] must have exactly the keys '
                f'{", ".join(_RUN_KEYS)}')
        vals = r['values']
        if not isinstance(vals, dict) or list(vals) != labels or any(
                not isinstance(v, (int, float)) or not math.isfinite(v)
                for v in vals.values()):
            bad(f'runs[{i}].values must hold a finite number for each of '
                f'{", ".join(labels)}')


def read_spread_record(path: str) -> Dict:
    """Read and check a record of :func:`write_spread_record`."""
    return read_record(path, _check_record)


def write_spread_record(path: str, protocol: Dict,
                        runs: List[Dict]) -> Dict:
    """Write the record (atomically; only over a record of this writer,
    anything else there is an error and nothing is written)."""
    return write_record(path, dict(protocol=protocol, runs=runs),
                        SPREAD_WRITER, _check_record,
                        what='a demo spread record',
                        hint='another --record path', allow_nan=False,
                        indent=1)


def _range(runs: Sequence[Dict]) -> Dict[str, List[float]]:
    return {label: [min(r['values'][label] for r in runs),
                    max(r['values'][label] for r in runs)]
            for label, _ in AP_KEYS}


def expected_from_record(record: Dict, path: str) -> Dict:
    """The record as :data:`~ccop_plugin.apis.demo_range.DEMO_EXPECTED`:
    the range over all its runs and the reference ISA's run seed 0."""
    runs = record['runs']
    ref_isa = record['protocol'].get('reference_isa', 'native')
    ref = [r for r in runs if r['isa'] == ref_isa and r['run_seed'] == 0]
    return dict(
        record=path, runs=len(runs),
        range={k: tuple(v) for k, v in _range(runs).items()},
        reference=dict(machine=ref[0]['machine'] if ref else '',
                       run_seed=0,
                       values=dict(ref[0]['values']) if ref else {}))


def spread_markdown(record: Dict) -> str:
    """The record as markdown: every run, then mean, std and range per
    instruction set and over all runs."""
    runs = record['runs']
    labels = [label for label, _ in AP_KEYS]
    head = ('| ISA | run seed | ' + ' | '.join(labels) +
            ' | pre-training s | fine-tuning s |')
    lines = ['# The demo over run seeds and CPU instruction sets', '',
             f"Command: `{record['protocol'].get('command')}`. AP x100 on "
             'the synthetic val split, demo settings. Seconds are wall '
             'times on a machine shared with other jobs (load average '
             f"{record['protocol'].get('load_average')}): compare them only "
             'loosely.', '', head,
             '|' + ' --- |' * (len(labels) + 4)]
    for r in runs:
        lines.append(f"| {r['isa']} | {r['run_seed']} | " + ' | '.join(
            f"{r['values'][k]:.1f}" for k in labels) +
            f" | {r['pretrain_s']:.0f} | {r['finetune_s']:.0f} |")
    lines += ['', '| runs | n | ' + ' | '.join(labels) + ' |',
              '|' + ' --- |' * (len(labels) + 2)]
    groups = {}
    for r in runs:
        groups.setdefault(f"ISA {r['isa']}", []).append(r)
    groups['all'] = runs
    for name, rs in groups.items():
        cells = []
        for k in labels:
            v = [r['values'][k] for r in rs]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f'{statistics.mean(v):.1f} ± {sd:.1f} '
                         f'[{min(v):.1f}, {max(v):.1f}]')
        lines.append(f'| {name} | {len(rs)} | ' + ' | '.join(cells) + ' |')
    lines += ['', 'Cells: mean ± std [lowest, highest]. Machines:', '']
    for m in sorted({r['machine'] or 'not recorded' for r in runs}):
        lines.append(f'- {m}')
    return '\n'.join(lines) + '\n'
