"""Budget sweep: at which pre-training length and data size do methods
separate?

Each grid point (number of unlabeled images x pre-training iterations) is a
multi-seed comparison (:func:`~ccop_plugin.apis.comparison.run_comparison`)
scored on the **val** split (no test split is read: the final figures of
``tools/compare_pretraining.py --num-test N`` come from a split the sweep
never saw). Points of the same data size share one work dir, so the runs
that do not depend on the budget (no pre-training) are computed once, and a
rerun reuses every finished stage.

The sweep's record (``write_sweep_record`` is the only writer)::

    {"protocol": {<settings, methods, seeds, grid, machine>},
     "points": [{"num_unlabeled": U, "pretrain_iters": I, "seconds": s,
                 "compute_seconds": <every stage's recorded seconds,
                                     the same when a rerun reuses them>,
                 "results": {<method>: {"probe_acc": [per seed],
                                        "bbox_ap": [...], "segm_ap": [...]}},
                 "separation": {<measure>: {...}}}]}
"""
import os.path as osp
import time
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

from ..utils.fileio import atomic_write_text
from ..utils.records import read_record, write_record
from ..utils.stats import mean_std
from .comparison import check_methods, comparison_protocol, run_comparison
from .job_config import MainJobConfig
from .main_job import job_lock
from .stages import Probe
from .stats import (  # noqa: F401 (separation: the sweep's statistic)
    MEASURES,
    compute_seconds,
    separation,
)

SWEEP_WRITER = 'ccop_plugin.apis.sweep.write_sweep_record'


def _check_sweep(obj, path: str) -> None:
    def bad(msg):
        raise ValueError(f'{path}: not a sweep record: {msg}')
    if not isinstance(obj, dict) or set(obj) != {'protocol', 'points'}:
        bad('expected exactly the keys "protocol" and "points"')
    if not isinstance(obj['points'], list):
        bad('"points" must be a list')
    for p in obj['points']:
        if not isinstance(p, dict) or not {
                'num_unlabeled', 'pretrain_iters', 'results'} <= set(p):
            bad('every point needs num_unlabeled, pretrain_iters, results')


def read_sweep_record(path: str) -> Dict:
    """Read and check a record of :func:`write_sweep_record`."""
    return read_record(path, _check_sweep)


def write_sweep_record(path: str, protocol: Dict, points: List[Dict]) -> Dict:
    """Write the sweep's record atomically; a file there that is not a
    record of this writer is an error (nothing is written)."""
    return write_record(path, dict(protocol=protocol, points=points),
                        SWEEP_WRITER, _check_sweep, what='a sweep record',
                        allow_nan=False)


def _pct(x: Optional[float]) -> str:
    return '-' if x is None else f'{100 * x:.1f}'


def sweep_table(points: List[Dict], methods: Sequence[str]) -> str:
    """Markdown: per grid point the mean (x100) of each method and the
    paired CCOP - MoCo v2 difference (mean ± std, seeds won)."""
    lines = ['| unlabeled | iters | measure | ' + ' | '.join(methods) +
             ' | CCOP - MoCo v2 (paired) | CCOP wins | stable |',
             '|' + ' --- |' * (len(methods) + 6)]
    for p in points:
        for k in MEASURES:
            means = [mean_std([v for v in p['results'][m][k]
                                if v is not None])['mean'] for m in methods]
            if all(v is None for v in means):
                continue
            sep = p.get('separation', {}).get(k)
            diff = wins = stable = '-'
            if sep:
                diff = _pct(sep['mean'])
                if sep['std'] is not None:
                    diff += f' ± {100 * sep["std"]:.1f}'
                wins = f'{sep["wins"]} of {sep["seeds"]}'
                stable = 'yes' if sep['stable'] else 'no'
            lines.append(
                f'| {p["num_unlabeled"]} | {p["pretrain_iters"]} | {k} | ' +
                ' | '.join(_pct(v) for v in means) +
                f' | {diff} | {wins} | {stable} |')
    return '\n'.join(lines) + '\n'


def run_sweep(base: MainJobConfig, iters: Sequence[int],
              num_unlabeled: Sequence[int], methods: Sequence[str],
              seeds: Sequence[int], record: str,
              probe: Optional[Probe] = None) -> Dict:
    """Run every grid point (data sizes outer, iterations inner, shortest
    first) and rewrite ``record`` and ``<work_dir>/sweep.md`` after each.

    Args:
        base: Settings of every point but ``num_unlabeled`` and
            ``pretrain_iters``; its ``num_test`` is ignored (val only).
        iters / num_unlabeled: The grid.
        methods / seeds: As :func:`run_comparison`.
        record: Path of the sweep record.
        probe: The probe to measure too (None: not measured).
    """
    methods = check_methods(methods)
    if not iters or not num_unlabeled or min(iters) < 1 or \
            min(num_unlabeled) < 1:
        raise ValueError('the grid needs positive --iters and '
                         f'--num-unlabeled, got {iters}, {num_unlabeled}')
    if osp.lexists(record):
        read_sweep_record(record)  # refuse a foreign file before hours
    base = replace(base, num_test=0)
    protocol = comparison_protocol(base, methods, seeds, probe=probe)
    protocol.update(grid=dict(num_unlabeled=sorted(num_unlabeled),
                              pretrain_iters=sorted(iters)),
                    split='val', started_utc=time.strftime(
                        '%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
    # the grid's values are per point (and the test split is never read):
    # the protocol must not name the base config's single value
    for k in ('num_unlabeled', 'pretrain_iters'):
        protocol['settings'].pop(k, None)
    protocol['pretrain'].pop('iters', None)
    for k in ('num_unlabeled', 'num_test'):
        protocol['data'].pop(k, None)
    # one sweep per work dir (each point's comparison locks its own folder)
    with job_lock(base.work_dir):
        points = _run_points(base, iters, num_unlabeled, methods, seeds,
                             record, probe, protocol)
    return dict(protocol=protocol, points=points)


def _run_points(base: MainJobConfig, iters: Sequence[int],
                num_unlabeled: Sequence[int], methods: List[str],
                seeds: Sequence[int], record: str, probe: Optional[Probe],
                protocol: Dict) -> List[Dict]:
    points = []
    for u in sorted(num_unlabeled):
        for it in sorted(iters):
            cfg = replace(base, num_unlabeled=u, pretrain_iters=it,
                          work_dir=osp.join(base.work_dir, f'unlabeled{u}'))
            t0 = time.time()
            res = run_comparison(
                cfg, methods, seeds, probe=probe,
                record=osp.join(cfg.work_dir, f'science_iters{it}.json'))
            points.append(dict(num_unlabeled=u, pretrain_iters=it,
                               seconds=round(time.time() - t0, 1),
                               compute_seconds=compute_seconds(
                                   res, res['runs']) if 'runs' in res
                               else None,
                               results=res['values'],
                               separation=separation(res['values'])))
            write_sweep_record(record, protocol, points)
            atomic_write_text(osp.join(base.work_dir, 'sweep.md'),
                              sweep_table(points, methods))
    return points
