"""Markdown tables of the main job's report and comparison: COCO AP per
method, mean +- std over seeds, final pre-training losses, paired
differences and the positive controls."""
import os.path as osp
from typing import Dict, List, Optional, Sequence

from ccop_plugin.utils.stats import mean_std
from .methods import METHOD_NAMES
from .science_record import (
    OVER_CHANCE_KEYS,
    RECORD_KEYS,
    RECORD_LABELS,
    SUPERVISED,
)
from .stats import (
    INFONCE_OVER_CHANCE_BAR,
    MEASURES,
    SUPERVISED_PROBE_BAR,
    final_losses,
    positive_controls,
    read_scalars,
    separation,
)

AP_KEYS = (('bbox AP', 'coco/bbox_mAP'), ('bbox AP50', 'coco/bbox_mAP_50'),
           ('bbox AP75', 'coco/bbox_mAP_75'), ('mask AP', 'coco/segm_mAP'),
           ('mask AP50', 'coco/segm_mAP_50'), ('mask AP75',
                                                'coco/segm_mAP_75'))


def ap_table(metrics: Dict[str, Dict[str, float]]) -> str:
    """Markdown table of COCO AP (x100) per method (mask columns only when
    some method has mask AP: a boxes-only detector has none)."""
    keys = [(n, k) for n, k in AP_KEYS
            if k.startswith('coco/bbox') or any(k in m for m in
                                                metrics.values())]
    head = '| pre-training | ' + ' | '.join(n for n, _ in keys) + ' |'
    lines = [head, '|' + ' --- |' * (len(keys) + 1)]
    for method, m in metrics.items():
        vals = [f'{100 * m[k]:.1f}' if m.get(k) is not None else '-'
                for _, k in keys]
        lines.append(f'| {METHOD_NAMES.get(method, method)} | ' +
                     ' | '.join(vals) + ' |')
    return '\n'.join(lines) + '\n'


def per_category_table(per_class: Dict[str, Dict[str, Optional[float]]]
                       ) -> str:
    """Markdown: bbox AP (x100) per category (rows) and method (columns);
    '' when no method has per-category values."""
    methods = [m for m, v in per_class.items() if v]
    if not methods:
        return ''
    cats = list(per_class[methods[0]])
    lines = ['| category | ' + ' | '.join(METHOD_NAMES.get(m, m)
                                         for m in methods) + ' |',
             '|' + ' --- |' * (len(methods) + 1)]
    for c in cats:
        vals = [per_class[m].get(c) for m in methods]
        lines.append(f'| {c} | ' + ' | '.join(
            '-' if v is None else f'{100 * v:.1f}' for v in vals) + ' |')
    return '\n'.join(lines) + '\n'


def comparison_table(values: Dict[str, Dict[str, List]], seeds: Sequence[int],
                     split: str = 'test') -> str:
    """Markdown: mean ± sample std (x100) over seeds per method, then the
    value of every seed."""
    n = len(seeds)
    cols = [RECORD_LABELS[k] for k in RECORD_KEYS]
    lines = [f'Mean ± standard deviation (ddof 1) over {n} seed(s) '
             f'{list(seeds)}, x100; AP on the {split} split.', '',
             '| method | ' + ' | '.join(cols) + ' |',
             '|' + ' --- |' * (len(cols) + 1)]
    for m, vals in values.items():
        lines.append(_row(m, [_mean_std_cell(vals[k], 1, scale=100, total=n)
                              for k in RECORD_KEYS]))
    lines += ['', 'Per seed (x100):', '',
              '| method | seed | ' + ' | '.join(cols) + ' |',
              '|' + ' --- |' * (len(cols) + 2)]
    for m, vals in values.items():
        for i, seed in enumerate(seeds):
            cells = ['-' if vals[k][i] is None else f'{100 * vals[k][i]:.1f}'
                     for k in RECORD_KEYS]
            lines.append(f'| {METHOD_NAMES.get(m, m)} | {seed} | ' +
                         ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def pretrain_loss_table(runs: Dict[str, Dict[int, Dict]],
                        methods: Sequence[str], seeds: Sequence[int]) -> str:
    """Markdown: per method the final pre-training losses
    (:func:`final_losses`), mean ± std over seeds; '' when no method
    pre-trained."""
    per = {}
    for m in methods:
        vals: Dict[str, List[float]] = {}
        for s in seeds:
            pre = runs[m][s].get('pretrain') or {}
            if not pre.get('checkpoint'):
                continue
            fl = final_losses(read_scalars(osp.dirname(pre['checkpoint'])))
            for k, v in fl.items():
                vals.setdefault(k, []).append(v)
        if vals:
            per[m] = vals
    if not per:
        return ''
    keys = sorted({k for v in per.values() for k in v},
                  key=lambda k: (k != 'loss', k))
    lines = ['Final pre-training losses (mean of the last 10 % of the logged '
             'iterations; mean ± std over seeds). An InfoNCE loss against a '
             'queue of K keys that cannot tell the positive from the '
             'negatives is ln(K + 1) (5.55 for K = 256).', '',
             '| method | ' + ' | '.join(keys) + ' |',
             '|' + ' --- |' * (len(keys) + 1)]
    for m, vals in per.items():
        lines.append(_row(m, [_mean_std_cell(vals.get(k, []), 3)
                              for k in keys]))
    return '\n'.join(lines) + '\n'


def _mean_std_cell(values: Sequence[Optional[float]], digits: int,
                   spread: bool = False, scale: float = 1.,
                   total: Optional[int] = None) -> str:
    """'mean ± std' of the non-null values times ``scale`` ('-' for none),
    with their '[min, max]' when ``spread`` and '(n of total)' when fewer
    than ``total`` values are not null."""
    xs = [scale * x for x in values if x is not None]
    ms = mean_std(xs)
    if ms['mean'] is None:
        return '-'
    cell = f"{ms['mean']:.{digits}f}"
    if ms['std'] is not None:
        cell += f" ± {ms['std']:.{digits}f}"
        if spread:
            cell += f' [{min(xs):.{digits}f}, {max(xs):.{digits}f}]'
    if total is not None and ms['n'] < total:
        cell += f" ({ms['n']} of {total})"
    return cell


def _row(method: str, cells: Sequence[str]) -> str:
    return f'| {METHOD_NAMES.get(method, method)} | ' + ' | '.join(cells) \
        + ' |'


OVER_CHANCE_LABELS = dict(infonce_over_chance='image InfoNCE',
                          roi_infonce_over_chance='RoI InfoNCE',
                          intra_over_chance='intra-image triplet')


def over_chance_table(values: Dict[str, Dict[str, List]]) -> str:
    """Markdown: each pre-trained method's final losses over their chance
    levels (the record's ``*_over_chance``), mean ± std and range over the
    runs; '' when no method has one."""
    keys = [k for k in OVER_CHANCE_KEYS
            if any(k in v for v in values.values())]
    if not keys:
        return ''
    lines = ['Final losses over their chance level (image and RoI InfoNCE / '
             'ln(K + 1), intra-image triplet / its margin): 1 is a network '
             'that cannot tell its positive from the negatives; mean ± std '
             '[min, max] over the runs.', '',
             '| method | ' + ' | '.join(OVER_CHANCE_LABELS[k] for k in keys)
             + ' |', '|' + ' --- |' * (len(keys) + 1)]
    for m, vals in values.items():
        if any(k in vals for k in keys):
            lines.append(_row(m, [_mean_std_cell(vals.get(k, []), 2, True)
                                  for k in keys]))
    return '\n'.join(lines) + '\n'


def paired_table(values: Dict[str, Dict[str, List]],
                 against: str = 'mocov2') -> str:
    """Markdown: every other method minus ``against``, seed by seed (same
    seed, same data): mean ± std (x100), seeds won, whether the sign holds
    for every seed; '' when ``against`` was not run or nothing else was."""
    others = [m for m in values if m != against]
    if against not in values or not others:
        return ''
    name = METHOD_NAMES.get(against, against)
    lines = [f'Paired differences against {name} (method minus {name}, '
             'same seed and data; x100): mean ± std, the 95 % t interval '
             'of the mean (runs as independent pairs), runs won, sign the '
             'same in every run.', '',
             '| method | ' + ' | '.join(RECORD_LABELS[k] for k in MEASURES)
             + ' |', '|' + ' --- |' * (len(MEASURES) + 1)]
    for m in others:
        sep = separation(values, m, against, base='')
        cells = []
        for k in MEASURES:
            r = sep.get(k)
            if not r:
                cells.append('-')
                continue
            cell = f"{100 * r['mean']:+.1f}"
            if r['std'] is not None:
                cell += f" ± {100 * r['std']:.1f}"
            if r.get('ci95'):
                lo, hi = (100 * v for v in r['ci95'])
                cell += f" [{lo:+.1f}, {hi:+.1f}]"
            cell += f" ({r['wins']} of {r['seeds']}"
            cell += ', stable)' if r['stable'] else ')'
            cells.append(cell)
        lines.append(f'| {METHOD_NAMES.get(m, m)} | ' + ' | '.join(cells) +
                     ' |')
    return '\n'.join(lines) + '\n'


#: How each check of :func:`~ccop_plugin.apis.stats.positive_controls` reads
#: in a table: its label (``{l}``: the learner, ``{b}``: the base), its
#: criterion and the scale of its value (100: a fraction shown x100).
_CONTROL_ROWS = dict(
    probe_reads_features=(
        'the probe reads what features know: supervised backbone, probe acc',
        f'mean >= {100 * SUPERVISED_PROBE_BAR:.0f}', 100),
    learner_learns_task=(
        '{l} learns its task: final image InfoNCE / ln(K + 1)',
        f'mean <= {INFONCE_OVER_CHANCE_BAR:.2f}', 1),
    probe_beats_random=(
        '{l} beats {b} on the probe: paired probe acc difference',
        'mean > 0 and > its std', 100),
    pretraining_helps_detector=(
        'pre-training helps the detector: {l} minus {b}, paired bbox AP',
        '95 % interval above 0', 100))


def controls_table(values: Dict[str, Dict[str, List]],
                   supervised: Optional[List] = None,
                   learner: str = 'mocov2', base: str = 'none') -> str:
    """Markdown: the comparison's positive controls (what must hold before
    its differences are read), each with its criterion, the measured value
    (mean ± std, the 95 % interval where paired) and whether it holds; ''
    when none could be checked."""
    checks = positive_controls(values, supervised, learner, base)
    if not checks:
        return ''
    names = dict(l=METHOD_NAMES.get(learner, learner),
                 b=METHOD_NAMES.get(base, base))
    lines = ['Positive controls, read before any difference (x100 but the '
             'InfoNCE ratio; mean ± std over the runs, [95 % interval] '
             'where paired):', '',
             '| control | criterion | measured | holds |',
             '| --- | --- | --- | --- |']
    for c in checks:
        label, criterion, scale = _CONTROL_ROWS[c['name']]
        sign = '+' if 'ci95' in c else ''
        digits = 1 if scale == 100 else 2
        cell = f"{scale * c['mean']:{sign}.{digits}f}"
        if c['std'] is not None:
            cell += f" ± {scale * c['std']:.{digits}f}"
        if c.get('ci95'):
            lo, hi = (scale * v for v in c['ci95'])
            cell += f' [{lo:+.{digits}f}, {hi:+.{digits}f}]'
        lines.append(f"| {label.format(**names)} | {criterion} | {cell} | "
                     f"{'yes' if c['holds'] else '**no**'} |")
    return '\n'.join(lines) + '\n'


def ablations(values: Dict[str, Dict]) -> Dict[str, Dict]:
    """CCOP and its ablations (``ccop_*``) of a comparison's values: the
    ablations are read against the full method."""
    return {m: v for m, v in values.items()
            if m == 'ccop' or m.startswith('ccop_')}


def _mean_cell(values: Sequence[Optional[float]]) -> str:
    """The mean of the non-null values to two digits ('-' for none)."""
    mean = mean_std([x for x in values if x is not None])['mean']
    return '-' if mean is None else f'{mean:.2f}'


def summary_table(results: Dict[str, Dict[str, List]]) -> str:
    """Markdown: a science record's ``results`` in one table (README's):
    bbox and mask AP, probe accuracy (x100) and the final losses over
    chance per method, mean ± std over the runs, the probe's positive
    control (``supervised``) last."""
    lines = ['| pre-training | bbox AP | mask AP | object probe acc. | '
             'image InfoNCE / chance |', '| --- | --- | --- | --- | --- |']
    for m, v in results.items():
        ratios = [_mean_cell(v.get(k, [])) for k in OVER_CHANCE_KEYS]
        cell = ratios[0]
        extra = [f'{n} {r}' for n, r in zip(('RoI', 'intra'), ratios[1:])
                 if r != '-']
        if extra:
            cell += f" ({', '.join(extra)})"
        name = ("supervised (probe's control)" if m == SUPERVISED
                else METHOD_NAMES.get(m, m))
        lines.append(f'| {name} | ' + ' | '.join(
            [_mean_std_cell(v.get(k, []), 1, scale=100)
             for k in ('bbox_ap', 'segm_ap', 'probe_acc')] + [cell]) + ' |')
    return '\n'.join(lines) + '\n'


def record_tables(record: Dict) -> str:
    """Every table a science record (``read_science_record``) holds, as
    markdown: the summary, the positive controls, the paired differences
    against MoCo v2, the ablations against CCOP and the losses over
    chance (what README and docs/science.md quote)."""
    results = record['results']
    values = {m: v for m, v in results.items() if m != SUPERVISED}
    sup = results.get(SUPERVISED, {}).get('probe_acc')
    protocol = record.get('protocol', {})
    parts = [summary_table(results),
             *difference_tables(values, sup, protocol.get('data_seeds'),
                                len(protocol.get('seeds', [])))]
    return '\n'.join(p for p in parts if p)


def difference_tables(values: Dict[str, Dict[str, List]],
                      supervised: Optional[List] = None,
                      data_seeds: Optional[Sequence[int]] = None,
                      runs: int = 0) -> List[str]:
    """The tables that read a comparison's differences, in reading order
    (each '' when it does not apply): the positive controls, the paired
    differences against MoCo v2 (per data seed too, given ``data_seeds``
    and the ``runs`` per data seed), the ablations against CCOP and the
    losses over chance."""
    return [controls_table(values, supervised), paired_table(values),
            per_data_seed_table(values, data_seeds, runs),
            paired_table(ablations(values), against='ccop'),
            over_chance_table(values)]


def per_data_seed_table(values: Dict[str, Dict[str, List]],
                        data_seeds: Optional[Sequence[int]], runs: int,
                        against: str = 'mocov2') -> str:
    """Markdown: every method minus ``against`` (x100), the mean of its
    paired differences on each data seed (runs of one data seed share
    their data, so the data seeds are the independent replicates); '' for
    fewer than two data seeds. ``values`` hold ``runs`` values per data
    seed, data seed first."""
    if not data_seeds or len(data_seeds) < 2 or against not in values:
        return ''
    name = METHOD_NAMES.get(against, against)
    lines = [f'Paired differences against {name} per data seed (mean over '
             f'its {runs} run seeds, x100):', '',
             '| method | measure | ' + ' | '.join(
                 f'data seed {d}' for d in data_seeds) + ' |',
             '|' + ' --- |' * (len(data_seeds) + 2)]
    for m in values:
        if m == against:
            continue
        for k in MEASURES:
            cells = []
            for i in range(len(data_seeds)):
                part = slice(i * runs, (i + 1) * runs)
                diffs = [x - y for x, y in zip(values[m][k][part],
                                               values[against][k][part])
                         if x is not None and y is not None]
                cells.append(f'{100 * sum(diffs) / len(diffs):+.1f}'
                             if diffs else '-')
            if any(c != '-' for c in cells):
                lines.append(f'| {METHOD_NAMES.get(m, m)} | '
                             f'{RECORD_LABELS[k]} | ' + ' | '.join(cells)
                             + ' |')
    return '\n'.join(lines) + '\n'


def supervised_line(accs: Optional[List[float]]) -> str:
    """The probe's positive control in the comparison's table ('' when it
    did not run)."""
    if not accs:
        return ''
    ms = mean_std(accs)
    std = '' if ms['std'] is None else f" ± {100 * ms['std']:.1f}"
    return ('Positive control of the probe (the same ResNet trained with '
            'the train labels, probed like every method): probe acc '
            f"{100 * ms['mean']:.1f}{std} (x100, {len(accs)} run(s)).\n")


def reruns_table(reruns: Sequence[Dict]) -> str:
    """Markdown: the runs two joined records measured with other values
    (``protocol.reruns`` of :mod:`~ccop_plugin.apis.science_merge`), x100,
    the kept value first; '' when there are none."""
    if not reruns:
        return ''
    lines = ['Runs measured twice with other values (a rerun, e.g. on '
             'another CPU, whose float arithmetic differs); x100, kept / '
             'replaced:', '',
             '| method | run | ' + ' | '.join(
                 RECORD_LABELS[k] for k in RECORD_KEYS) + ' | kept from |',
             '|' + ' --- |' * (len(RECORD_KEYS) + 3)]
    for r in reruns:
        kept, old = r['kept']['values'], r['replaced']['values']
        cells = [' / '.join('-' if v.get(k) is None else
                            f'{100 * v[k]:.1f}' for v in (kept, old))
                 for k in RECORD_KEYS]
        run = tuple(r['run']) if isinstance(r['run'], list) else r['run']
        lines.append(f"| {METHOD_NAMES.get(r['method'], r['method'])} | "
                     f"{run} | " + ' | '.join(cells)
                     + f" | {osp.basename(r['kept']['record'])} |")
    return '\n'.join(lines) + '\n'
