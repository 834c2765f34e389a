"""Evaluation of pre-trained representations without fine-tuning."""
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
    'ProbeError', 'build_encoder', 'extract_features',
    'fit_logistic_regression', 'linear_probe', 'load_split', 'probe_features'
]
