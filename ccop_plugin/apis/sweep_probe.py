"""The protocol sweep's second measure: does a point's MoCo v2 checkpoint
name the objects better than random convolutions do?

Learning the instance task (the InfoNCE below chance) is not yet learning
features that name objects. With ``--probe-data`` the sweep probes every
point's final checkpoint with the object-level linear probe
(:func:`ccop_plugin.evaluation.linear_probe`) on a labelled dataset, and
random initialisations of the same width once per record, so that the two
can be compared point by point. The sweep is a search, so it reads only the
train and val splits: the classifier's regularisation is chosen on val and
scored on val (optimistic alike for every point and for random init); the
held-out test split is left to the final controls
(``tools/probe_controls.py``).
"""
import os.path as osp
from typing import Dict, Iterable, Optional, Sequence

from ..utils.stats import mean_std

#: the split a sweep point is probed on (selection and score)
SWEEP_PROBE_SPLIT = 'val'
#: random initialisations probed per record (seeds 0 .. N-1)
RANDOM_SEEDS = 5


def _summary(res: Dict) -> Dict:
    return dict(val_acc=round(res['acc'], 4),
                train_acc=round(res['train_acc'], 4),
                weight_decay=res['weight_decay'], max_iter=res['max_iter'],
                seconds=res['seconds'])


def probe_point(checkpoint: str, probe_data: str) -> Dict:
    """Probe one sweep checkpoint on ``probe_data``'s val split."""
    from ccop_plugin.evaluation import linear_probe
    if not osp.isfile(checkpoint):
        raise ValueError(f'{checkpoint}: no checkpoint to probe (run the '
                         'point again with --rerun)')
    res = linear_probe(checkpoint, probe_data, val_split=SWEEP_PROBE_SPLIT,
                       select_split=SWEEP_PROBE_SPLIT)
    return dict(_summary(res), data_root=osp.abspath(probe_data),
                version=res['version'])


def probe_random_init(probe_data: str, width: int,
                      seeds: Sequence[int] = range(RANDOM_SEEDS)) -> Dict:
    """Random initialisations of width ``width``, probed like the points:
    every seed's val accuracy, their mean and sample standard deviation."""
    from ccop_plugin.evaluation import linear_probe
    from ccop_plugin.evaluation.linear_probe import VERSION
    runs = [linear_probe(None, probe_data, seed=s, random_width=width,
                         val_split=SWEEP_PROBE_SPLIT,
                         select_split=SWEEP_PROBE_SPLIT) for s in seeds]
    accs = [r['acc'] for r in runs]
    ms = mean_std(accs)
    return dict(data_root=osp.abspath(probe_data), width=width,
                version=VERSION, seeds=list(seeds),
                val_acc=[round(a, 4) for a in accs],
                mean=round(ms['mean'], 4), sd=round(ms['std'] or 0., 4))


def probed_on(probe: Optional[Dict], probe_data: str) -> bool:
    """Whether ``probe`` (a point's, or random init's) was measured on
    ``probe_data`` by the current probe version."""
    from ccop_plugin.evaluation.linear_probe import VERSION
    probe = probe or {}
    return (probe.get('data_root') == osp.abspath(probe_data)
            and probe.get('version') == VERSION)


def random_init_for(levers: Iterable, probe_data: str,
                    recorded: Optional[Dict]) -> Dict:
    """Random init's probe for sweep points of one width: ``recorded``
    when it was measured on ``probe_data`` by this probe at that width,
    else measured now (:func:`probe_random_init`).

    Raises:
        ValueError: the points do not share one width.
    """
    widths = {lv.width for lv in levers}
    if len(widths) != 1:
        raise ValueError('--probe-data: the points must share one width '
                         f'(random init is probed at it), got {widths}')
    width = widths.pop()
    if probed_on(recorded, probe_data) and recorded.get('width') == width:
        return recorded
    return probe_random_init(probe_data, width)


def beats_random(probe: Dict, random_init: Dict) -> bool:
    """A point's val accuracy above random init's mean by more than one of
    its standard deviations (the sweep's screen; the control itself is
    read on test over >= 5 run seeds)."""
    return probe['val_acc'] > random_init['mean'] + random_init['sd']


__all__ = ['RANDOM_SEEDS', 'SWEEP_PROBE_SPLIT', 'beats_random',
           'probe_point', 'probe_random_init', 'probed_on',
           'random_init_for']
