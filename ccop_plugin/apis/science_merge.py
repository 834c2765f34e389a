"""Join science records of one protocol into one record.

A comparison's grid grows by runs made at different times: ``make science``
(CCOP, MoCo v2, random init at five run seeds), ``make science-ablations``
(the seven methods at three) and more run seeds run later into their own
record (``tools/compare_pretraining.py --first-run-seed S``). A work dir
does not outlive its machine, so these parts are joined from their records
(:func:`merge_science_records`), never by hand:

* every part must have the same protocol (data, budgets, configs, probe,
  data seeds; what may differ: the command, the run seeds, the methods, the
  machine and the times), else a one-line error naming the part and the
  setting;
* a run (method, data seed, run seed) that two parts both measured keeps
  the later part's values (give the parts oldest first); where the two
  differ -- a rerun on another CPU is not bitwise the same run, its float
  arithmetic differs -- both are kept in ``protocol.reruns``, a measured
  rerun difference;
* the joined record keeps the run seeds that every method (and the probe's
  positive control, when a part has it) has on every data seed; the others
  are left out and listed.

The joined record is written by the format's one writer
(:func:`~ccop_plugin.apis.science_record.write_science_record`); its
``protocol.parts`` names each part's record, command, run seeds, methods,
machine and compute time.
"""
from typing import Dict, List, Optional, Sequence, Tuple

from .comparison import run_keys
from .science_record import SUPERVISED, read_science_record

__all__ = ['merge_science_records', 'PART_KEYS']

#: Protocol keys that may differ between the parts of one protocol.
PART_KEYS = ('command', 'seeds', 'methods', 'started_utc', 'seconds',
             'compute_seconds', 'machine', 'writer', 'parts',
             'compute_seconds_scope', 'reruns')


def _comparable(protocol: Dict) -> Dict:
    """The settings two parts of one protocol share."""
    p = {k: v for k, v in protocol.items() if k not in PART_KEYS}
    p['settings'] = {k: v for k, v in (p.get('settings') or {}).items()
                     if k != 'work_dir'}
    p['pretrain'] = {k: v for k, v in (p.get('pretrain') or {}).items()
                     if k not in ('per_method', 'configs', 'iters', 'batch')}
    p['evaluation'] = {k: v for k, v in (p.get('evaluation') or {}).items()
                       if k != 'supervised_probe_acc'}
    return p


def _first_difference(a, b, where: str = '') -> Optional[str]:
    """The first setting (dotted path) in which ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f'{where}{k}'
            d = _first_difference(a[k], b[k], f'{where}{k}.')
            if d:
                return d
        return None
    return None if a == b else where.rstrip('.') or '(the protocol)'


def _per_method(parts: Sequence[Tuple[str, Dict]], field: str) -> Dict:
    """The union of ``protocol.pretrain[field]`` over the parts (a method's
    entry must agree wherever it appears)."""
    out: Dict = {}
    for path, rec in parts:
        for m, v in (rec['protocol'].get('pretrain') or {}).get(
                field, {}).items():
            if m in out and out[m] != v:
                raise ValueError(f'{path}: protocol.pretrain.{field}.{m} is '
                                 f'{v!r}, another part has {out[m]!r}')
            out[m] = v
    return out


def _entries(parts: Sequence[Tuple[str, Dict]]
             ) -> Tuple[Dict, List[str], List[Dict]]:
    """``{(method, run key): (values, record)}`` over the parts, the methods
    in first-seen order, and the reruns: a run two parts both measured with
    other values (the later part's are kept)."""
    entries: Dict = {}
    methods: List[str] = []
    reruns: List[Dict] = []
    for path, rec in parts:
        proto = rec['protocol']
        keys = run_keys(proto['seeds'], proto.get('data_seeds'))
        for m, vals in rec['results'].items():
            if m != SUPERVISED and m not in methods:
                methods.append(m)
            for i, key in enumerate(keys):
                run = {k: v[i] for k, v in vals.items()}
                old = entries.get((m, key))
                if old is not None and any(
                        old[0].get(k, v) != v for k, v in run.items()):
                    reruns.append(dict(
                        method=m, run=list(key) if isinstance(key, tuple)
                        else key, kept=dict(record=path, values=run),
                        replaced=dict(record=old[1], values=old[0])))
                entries[(m, key)] = (run, path)
    return entries, methods, reruns


def merge_science_records(paths: Sequence[str], command: Optional[str] = None
                          ) -> Tuple[Dict, Dict, Optional[List], List[int]]:
    """Join the records at ``paths``, oldest first (see the module's
    docstring).

    Returns:
        tuple: ``(protocol, results, supervised, left_out)``, the arguments
        of :func:`~ccop_plugin.apis.science_record.write_science_record`
        (``protocol.reruns``: the runs two parts measured differently) and
        the run seeds left out (not every method has them).
    """
    if len(paths) < 2:
        raise ValueError('give at least two records to join')
    parts = [(p, read_science_record(p)) for p in paths]
    first_path, first = parts[0]
    base = _comparable(first['protocol'])
    for path, rec in parts[1:]:
        diff = _first_difference(base, _comparable(rec['protocol']))
        if diff:
            raise ValueError(f'{path}: not the protocol of {first_path} '
                             f'(protocol.{diff} differs)')
    entries, methods, reruns = _entries(parts)
    with_sup = any(SUPERVISED in rec['results'] for _, rec in parts)
    data_seeds = first['protocol'].get('data_seeds')
    seeds = sorted({s for _, rec in parts for s in rec['protocol']['seeds']})
    needed = methods + ([SUPERVISED] if with_sup else [])

    def complete(s):
        return all((m, key) in entries for m in needed
                   for key in run_keys([s], data_seeds))
    kept = [s for s in seeds if complete(s)]
    if not kept:
        raise ValueError(f'no run seed has every method ({", ".join(needed)}'
                         ') on every data seed in these records')
    keys = run_keys(kept, data_seeds)
    results = {}
    for m in methods:
        results[m] = {k: [entries[(m, key)][0].get(k) for key in keys]
                      for k in _measures(entries, m)}
    supervised = ([entries[(SUPERVISED, key)][0]['probe_acc']
                   for key in keys] if with_sup else None)
    protocol = _protocol(parts, methods, kept, command, with_sup)
    earlier = [r for _, rec in parts for r in rec['protocol'].get(
        'reruns', [])]
    protocol['reruns'] = [r for i, r in enumerate(earlier + reruns)
                          if _run_seed(r['run']) in kept
                          and r not in (earlier + reruns)[:i]]
    return (protocol, results, supervised,
            [s for s in seeds if s not in kept])


def _run_seed(run) -> int:
    return run[-1] if isinstance(run, list) else run


def _measures(entries: Dict, method: str) -> List[str]:
    names: List[str] = []
    for (m, _), (run, _) in entries.items():
        if m == method:
            names += [k for k in run if k not in names]
    return names


def _parts_list(parts: Sequence[Tuple[str, Dict]]) -> List[Dict]:
    """One entry per part run (a joined part contributes its own parts)."""
    out = []
    for path, rec in parts:
        proto = rec['protocol']
        if proto.get('parts'):
            out += [p for p in proto['parts'] if p not in out]
            continue
        entry = dict(record=path, **{
            k: proto.get(k) for k in ('command', 'seeds', 'methods',
                                      'started_utc', 'seconds',
                                      'compute_seconds', 'machine')})
        if entry not in out:
            out.append(entry)
    return out


def _protocol(parts: Sequence[Tuple[str, Dict]], methods: List[str],
              seeds: List[int], command: Optional[str],
              with_sup: bool) -> Dict:
    protocol = {k: v for k, v in parts[0][1]['protocol'].items()
                if k not in PART_KEYS}
    per_method = _per_method(parts, 'per_method')
    pretrain = dict(protocol['pretrain'],
                    configs={m: c for m, c in
                             _per_method(parts, 'configs').items()
                             if m in methods},
                    per_method={m: v for m, v in per_method.items()
                                if m in methods})
    first = next((m for m in methods if m in per_method), None)
    if first is not None:
        pretrain.update(iters=per_method[first]['iters'],
                        batch=per_method[first]['batch'])
    protocol['pretrain'] = pretrain
    if with_sup:
        protocol['evaluation'] = next(
            rec['protocol']['evaluation'] for _, rec in parts
            if SUPERVISED in rec['results'])
    listed = _parts_list(parts)
    protocol.update(
        command=command, methods=list(methods), seeds=list(seeds),
        parts=listed,
        compute_seconds=round(sum(p.get('compute_seconds') or 0
                                  for p in listed), 1),
        compute_seconds_scope='the sum of the parts\' compute_seconds; a '
        'part counts every stage it read, reused or computed, so a run two '
        'parts share counts twice, and runs left out count too')
    return protocol
