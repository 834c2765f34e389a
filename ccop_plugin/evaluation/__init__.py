"""Evaluation of pre-trained representations without fine-tuning."""
from .bn_stats import bn_statistics_drift, format_drift
from .linear_probe import (
    ProbeError,
    build_encoder,
    extract_features,
    fit_logistic_regression,
    linear_probe,
    load_split,
    probe_features,
)

__all__ = [
    'bn_statistics_drift', 'format_drift',
    'ProbeError', 'build_encoder', 'extract_features',
    'fit_logistic_regression', 'linear_probe', 'load_split', 'probe_features'
]
