"""The probe's controls record: probe results of several groups of runs
(random init, the supervised positive control, pre-trained methods) on one
dataset with one probe, their means and spreads, and the two checks of the
science protocol.

Every input is a result file of ``tools/linear_probe.py --out`` (or of
:func:`~.linear_probe.linear_probe` / :func:`~.supervised_control.
supervised_probe` written as JSON). The groups must have been probed alike:
the same data folder, splits, layers, RoI cells, probe version and feature
size; a file that differs is refused with one line naming it. The record
(``write_probe_controls`` is its only writer)::

    {"protocol": {"writer", "command", "data_root", "probe": {...},
                  "supervised_min", "beats_by"},
     "groups": {name: {"runs": [{"file", "seed", "acc", "select_acc",
                                 "train_acc", "weight_decay", "max_iter",
                                 "seconds", "source"}],
                       "acc_mean", "acc_sd", "n"}},
     "checks": {"supervised": {...}, "<method>_vs_random": {...}}}

Checks: the supervised group's mean accuracy is at least
:data:`SUPERVISED_MIN`; a method's mean beats the random-init group's mean
by more than :data:`BEATS_BY` times the larger of the two groups' sample
standard deviations, both groups holding at least :data:`MIN_SEEDS` runs.
"""
import json
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

from ..utils.records import read_record, write_record
from ..utils.stats import mean_std
from .probe_data import ProbeError

PROBE_CONTROLS_WRITER = (
    'ccop_plugin.evaluation.probe_controls.write_probe_controls')
#: the positive control's target (test accuracy of supervised features)
SUPERVISED_MIN = 0.70
#: a method beats random init when its mean is more than this many
#: standard deviations (the larger of the two groups') above it
BEATS_BY = 1.0
#: the fewest runs per group for the comparison with random init to pass
MIN_SEEDS = 5
#: the result fields that must agree between all probed runs
SAME = ('version', 'stages', 'pool', 'train_split', 'select_split',
        'val_split', 'feature_dim', 'n_train', 'n_val', 'features')
RANDOM, SUPERVISED = 'random_init', 'supervised'

__all__ = ['BEATS_BY', 'MIN_SEEDS', 'SUPERVISED_MIN', 'main',
           'parse_groups', 'probe_controls', 'probe_controls_table',
           'read_probe_controls',
           'write_probe_controls']


def _read_result(path: str) -> Dict:
    try:
        with open(path, encoding='utf-8') as f:
            res = json.load(f)
    except OSError as e:
        raise ProbeError(f'{path}: cannot read ({e.strerror})') from None
    except ValueError as e:
        raise ProbeError(f'{path}: not JSON ({e})') from None
    need = {'acc', 'data_root', 'seed'} | set(SAME)
    if not isinstance(res, dict) or not need <= set(res):
        raise ProbeError(f'{path}: not a probe result (tools/'
                         'linear_probe.py --out) of the current probe')
    return res


def _run_entry(path: str, res: Dict) -> Dict:
    """One run: ``seed`` of a random init or supervised control, ``run``
    its label (``seed S`` or a checkpoint's folder name)."""
    enc = res.get('encoder') or {}
    seed = enc.get('seed')
    if seed is None:
        seed = (res.get('supervised') or {}).get('seed')
    src = str(enc.get('source'))
    run = (f'seed {seed}' if seed is not None
           else osp.basename(osp.dirname(src)) or src)
    return dict(file=path, seed=seed, run=run, acc=res['acc'],
                select_acc=res.get('select_acc'),
                train_acc=res.get('train_acc'),
                weight_decay=res.get('weight_decay'),
                max_iter=res.get('max_iter'), seconds=res.get('seconds'),
                source=(res.get('encoder') or {}).get('source'))


def _checks(groups: Dict[str, Dict]) -> Dict:
    out: Dict = {}
    sup = groups.get(SUPERVISED)
    if sup is not None:
        out[SUPERVISED] = dict(acc_mean=sup['acc_mean'],
                               target=SUPERVISED_MIN,
                               passes=sup['acc_mean'] >= SUPERVISED_MIN)
    rnd = groups.get(RANDOM)
    if rnd is None:
        return out
    for name, g in groups.items():
        if name in (RANDOM, SUPERVISED):
            continue
        sds = [s for s in (g['acc_sd'], rnd['acc_sd']) if s is not None]
        margin = BEATS_BY * max(sds) if sds else None
        diff = g['acc_mean'] - rnd['acc_mean']
        out[f'{name}_vs_random'] = dict(
            diff=diff, margin=margin, n=[g['n'], rnd['n']],
            passes=(margin is not None and diff > margin
                    and min(g['n'], rnd['n']) >= MIN_SEEDS))
    return out


def probe_controls(files: Mapping[str, Sequence[str]],
                   command: Optional[str] = None) -> Dict:
    """The record of groups of probe result files (``name -> paths``;
    ``random_init`` and ``supervised`` name the two controls).

    Raises:
        ProbeError: An unreadable file, or one probed otherwise than the
            first (another data folder, layers, cells, splits, version).
    """
    groups: Dict[str, Dict] = {}
    first = None
    for name, paths in files.items():
        if not paths:
            raise ProbeError(f'group {name!r}: no result files')
        runs = []
        for p in paths:
            res = _read_result(p)
            res['data_root'] = osp.realpath(res['data_root'])
            if first is None:
                first = (p, res)
            for k in SAME + ('data_root', ):
                if res[k] != first[1][k]:
                    raise ProbeError(
                        f'{p}: probed with {k} {res[k]!r}, but {first[0]} '
                        f'with {first[1][k]!r}: every run must be probed '
                        'alike')
            runs.append(_run_entry(p, res))
        ms = mean_std([r['acc'] for r in runs])
        mean, sd = ms['mean'], ms['std']
        groups[name] = dict(runs=runs, acc_mean=mean, acc_sd=sd,
                            n=len(runs))
    probe = {k: first[1][k] for k in SAME}
    proto = dict(command=command, data_root=first[1]['data_root'],
                 probe=probe, chance=first[1].get('chance'),
                 supervised_min=SUPERVISED_MIN, beats_by=BEATS_BY)
    return dict(protocol=proto, groups=groups, checks=_checks(groups))


def _check(obj, path: str) -> None:
    def bad(msg):
        raise ValueError(f'{path}: not a probe controls record: {msg}')
    if not isinstance(obj, dict) or set(obj) != {'protocol', 'groups',
                                                 'checks'}:
        bad('expected exactly the keys "protocol", "groups" and "checks"')
    if not isinstance(obj['groups'], dict) or not obj['groups']:
        bad('"groups" must be a non-empty object')
    for name, g in obj['groups'].items():
        if not isinstance(g, dict) or not {'runs', 'acc_mean'} <= set(g):
            bad(f'group {name!r} needs "runs" and "acc_mean"')


def read_probe_controls(path: str) -> Dict:
    """Read and check a record of :func:`write_probe_controls`."""
    return read_record(path, _check)


def write_probe_controls(path: str, record: Dict) -> Dict:
    """Replace the controls record atomically (only a record of this
    writer) and its markdown table (``path`` with ``.md``)."""
    from ..utils.fileio import atomic_write_text
    out = write_record(path, record, PROBE_CONTROLS_WRITER, _check,
                       what='a probe controls record', allow_nan=False)
    atomic_write_text(osp.splitext(path)[0] + '.md',
                      probe_controls_table(out))
    return out


def _pct(v) -> str:
    return 'n/a' if v is None else f'{100 * v:.1f}'


def probe_controls_table(record: Dict) -> str:
    """Markdown: one row per group (runs, mean +- sd), then the checks."""
    split = record['protocol']['probe'].get('val_split', 'test')  # scored
    lines = [f'| group | runs | {split} accuracy per run (%) | '
             'mean +- sd (%) |',
             '| --- | --- | --- | --- |']
    for name, g in record['groups'].items():
        accs = ', '.join(_pct(r['acc']) for r in g['runs'])
        seeds = ', '.join(str(r.get('run', r['seed'])) for r in g['runs'])
        lines.append(f"| {name} | {seeds} | {accs} | "
                     f"{_pct(g['acc_mean'])} +- {_pct(g.get('acc_sd'))} |")
    lines += ['', '| check | value | target | passes |',
              '| --- | --- | --- | --- |']
    for name, c in record['checks'].items():
        if 'target' in c:
            value, target = _pct(c['acc_mean']), f">= {_pct(c['target'])}"
        else:
            value = f"{_pct(c['diff'])} points"
            target = (f"> {_pct(c['margin'])} (1 sd), "
                      f">= {MIN_SEEDS} runs each (n = {c['n'][0]}, "
                      f"{c['n'][1]})")
        lines.append(f"| {name} | {value} | {target} | "
                     f"{'yes' if c['passes'] else 'no'} |")
    return '\n'.join(lines) + '\n'


def parse_groups(specs: Sequence[str]) -> Dict[str, List[str]]:
    """``NAME=FILE[,FILE...]`` strings to ``name -> files``."""
    out: Dict[str, List[str]] = {}
    for s in specs:
        name, sep, files = s.partition('=')
        if not sep or not name or not files:
            raise ProbeError(f'{s!r}: expected NAME=FILE[,FILE...]')
        out.setdefault(name, []).extend(f for f in files.split(',') if f)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``tools/probe_controls.py``: write the record, print its table; 1
    with one line on stderr for a bad file or argument, else 0."""
    import argparse
    import sys
    p = argparse.ArgumentParser(
        description='Write the probe\'s controls record from probe result '
        'files (tools/linear_probe.py --out).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--group', action='append', required=True,
                   metavar='NAME=FILE[,FILE...]',
                   help='a group of probe results (repeatable); '
                   f'"{RANDOM}" and "{SUPERVISED}" are the controls')
    p.add_argument('--out', default='docs/benchmarks/science_controls.json')
    args = list(sys.argv[1:] if argv is None else argv)
    a = p.parse_args(args)
    try:
        rec = probe_controls(parse_groups(a.group), command=' '.join(
            ['python tools/probe_controls.py'] + args))
        rec = write_probe_controls(a.out, rec)
    except (ProbeError, FileExistsError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(probe_controls_table(rec), end='')
    return 0
