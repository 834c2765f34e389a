"""Statistics of the main job's runs: logged scalars, final losses, mean and
standard deviation over seeds, and paired separation of two methods."""
import glob
import json
import os.path as osp
from typing import Dict, List

from ..utils.stats import mean_ci


def read_scalars(run_dir: str) -> List[Dict]:
    """All logged training scalars of an mmengine run folder (every
    restart)."""
    rows = []
    for path in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    rows.append(json.loads(line))
    rows = [r for r in rows if 'iter' in r]
    dedup = {r['iter']: r for r in rows}  # a resumed run repeats iterations
    return [dedup[k] for k in sorted(dedup)]


def final_losses(rows: List[Dict], frac: float = 0.1) -> Dict[str, float]:
    """Each logged loss (``loss*`` keys) averaged over the last ``frac`` of
    the logged iterations (at least one): where pre-training ended."""
    keys = sorted({k for r in rows for k in r if k.startswith('loss')})
    out = {}
    for k in keys:
        xs = [r[k] for r in rows if k in r]
        tail = xs[-max(1, int(round(frac * len(xs)))):]
        out[k] = sum(tail) / len(tail)
    return out


#: Measures of a comparison, in the order the sweep reports them.
MEASURES = ('bbox_ap', 'segm_ap', 'probe_acc')


def separation(values: Dict[str, Dict[str, List]], a: str = 'ccop',
               b: str = 'mocov2', base: str = 'none') -> Dict:
    """How clearly method ``a`` and ``b`` separate, per measure.

    For every measure measured for both: the paired differences ``a - b``
    per seed (same seed, same data), their mean and sample std, its
    standard error ``se`` and 95 % Student-t interval ``ci95`` (runs taken
    as independent pairs), ``ci_excludes_zero``, the number of seeds where
    ``a`` wins, ``stable`` (every seed has the same non-zero sign) and
    ``beyond_one_std`` (``|mean| > std``). With ``base`` in ``values``: the
    seeds where ``a`` / ``b`` beat it.
    """
    out = {}
    if a not in values or b not in values:
        return out
    for k in MEASURES:
        pairs = [(x, y) for x, y in zip(values[a][k], values[b][k])
                 if x is not None and y is not None]
        if not pairs:
            continue
        diffs = [x - y for x, y in pairs]
        ms = mean_ci(diffs)
        signs = {(d > 0) - (d < 0) for d in diffs}
        res = dict(diffs=diffs, mean=ms['mean'], std=ms['std'],
                   se=ms['se'], ci95=(None if ms['lo'] is None
                                      else [ms['lo'], ms['hi']]),
                   wins=sum(d > 0 for d in diffs), seeds=len(diffs),
                   stable=len(signs) == 1 and 0 not in signs,
                   beyond_one_std=(ms['std'] is not None and
                                   abs(ms['mean']) > ms['std']),
                   ci_excludes_zero=(ms['lo'] is not None and
                                     (ms['lo'] > 0 or ms['hi'] < 0)))
        if base in values and base not in (a, b):
            for m in (a, b):
                res[f'{m}_beats_{base}'] = sum(
                    x is not None and z is not None and x > z
                    for x, z in zip(values[m][k], values[base][k]))
        out[k] = res
    return out


def compute_seconds(results: Dict, runs: Dict[str, Dict[int, Dict]]) -> float:
    """Seconds of every stage of a comparison (data, proposals, every run's
    stages) as recorded by the run that made it: the table's cost, the
    same when a rerun reuses the stages."""
    total = sum(results[k].get('seconds', 0) for k in ('data', 'proposals')
                if k in results)
    for per_seed in runs.values():
        for stages in per_seed.values():
            total += sum(r.get('seconds', 0) for r in stages.values()
                         if isinstance(r, dict))
    return round(total, 1)


#: The positive controls' bars (issue 23 of the science protocol): the
#: supervised backbone's probe accuracy, MoCo v2's final image InfoNCE over
#: ln(K + 1).
SUPERVISED_PROBE_BAR = 0.70
INFONCE_OVER_CHANCE_BAR = 0.75


def positive_controls(values: Dict[str, Dict[str, List]],
                      supervised: List = None, learner: str = 'mocov2',
                      base: str = 'none') -> List[Dict]:
    """The checks a comparison must pass before it is read, from its
    values (one dict per check that could be made: ``name``, ``mean``,
    ``std``, ``ci95`` where paired, and ``holds``; the criteria as text are
    :func:`~ccop_plugin.apis.tables.controls_table`'s):

    * the probe reads what features know: the supervised backbone's mean
      probe accuracy >= :data:`SUPERVISED_PROBE_BAR`;
    * ``learner`` (MoCo v2) learns its task: mean final image InfoNCE /
      ln(K + 1) <= :data:`INFONCE_OVER_CHANCE_BAR`;
    * its features beat ``base`` (random init) on the probe: paired mean
      difference positive and larger than its std;
    * pre-training helps the detector: the 95 % interval of the paired
      bbox AP difference to ``base`` lies above zero.
    """
    out = []
    sup = [x for x in supervised or [] if x is not None]
    if sup:
        ms = mean_ci(sup)
        out.append(dict(name='probe_reads_features', mean=ms['mean'],
                        std=ms['std'],
                        holds=ms['mean'] >= SUPERVISED_PROBE_BAR))
    ratios = [x for x in values.get(learner, {}).get(
        'infonce_over_chance', []) if x is not None]
    if ratios:
        ms = mean_ci(ratios)
        out.append(dict(name='learner_learns_task', mean=ms['mean'],
                        std=ms['std'],
                        holds=ms['mean'] <= INFONCE_OVER_CHANCE_BAR))
    sep = separation(values, learner, base, base='')
    paired = (('probe_acc', 'probe_beats_random',
               lambda r: r['mean'] > 0 and bool(r['beyond_one_std'])),
              ('bbox_ap', 'pretraining_helps_detector',
               lambda r: r['ci95'] is not None and r['ci95'][0] > 0))
    for key, name, holds in paired:
        if key in sep:
            r = sep[key]
            out.append(dict(name=name, mean=r['mean'], std=r['std'],
                            ci95=r['ci95'], holds=holds(r)))
    return out
