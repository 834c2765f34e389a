"""Mean and sample standard deviation: the one implementation the
comparison's tables (:mod:`ccop_plugin.apis.stats`) and the probe's
controls record (:mod:`ccop_plugin.evaluation.probe_controls`) share."""
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


__all__ = ['mean_std']
