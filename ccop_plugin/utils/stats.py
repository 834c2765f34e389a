"""Mean, sample standard deviation and the t interval of a mean: the one
implementation the comparison's tables (:mod:`ccop_plugin.apis.stats`) and
the probe's controls record (:mod:`ccop_plugin.evaluation.probe_controls`)
share."""
import math
from typing import Dict, Optional, Sequence


def mean_std(values: Sequence[Optional[float]]) -> Dict:
    """Mean and sample standard deviation (ddof 1) of the non-null values;
    ``std`` is None for fewer than two values, both are None for none."""
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return dict(mean=None, std=None, n=0)
    mean = sum(xs) / n
    std = (math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
           if n > 1 else None)
    return dict(mean=mean, std=std, n=n)


def mean_ci(values: Sequence[Optional[float]], level: float = 0.95) -> Dict:
    """:func:`mean_std` with the standard error ``se`` (std / sqrt(n)) and
    the two-sided Student-t interval of the mean at ``level`` (``lo``,
    ``hi``): the uncertainty of a mean of n independent runs, e.g. of
    paired differences. ``se``, ``lo`` and ``hi`` are None for fewer than
    two values."""
    out = dict(mean_std(values), se=None, lo=None, hi=None, level=level)
    if out['std'] is None:
        return out
    from scipy.stats import t
    se = out['std'] / math.sqrt(out['n'])
    half = float(t.ppf(0.5 + level / 2, out['n'] - 1)) * se
    out.update(se=se, lo=out['mean'] - half, hi=out['mean'] + half)
    return out


__all__ = ['mean_ci', 'mean_std']
