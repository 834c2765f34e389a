"""Evaluation of pre-trained representations without fine-tuning."""
from .bn_stats import bn_statistics_drift, format_drift
from .linear_probe import (
    build_encoder,
    extract_features,
    linear_probe,
    pool_roi_features,
)
from .probe_classifier import (
    fit_logistic_regression,
    probe_features,
    select_regularisation,
)
from .probe_data import ProbeError, load_split
from .supervised_control import supervised_probe, train_supervised_backbone

__all__ = [
    'bn_statistics_drift', 'format_drift',
    'ProbeError', 'build_encoder', 'extract_features',
    'fit_logistic_regression', 'linear_probe', 'load_split',
    'pool_roi_features', 'probe_features', 'select_regularisation',
    'supervised_probe', 'train_supervised_backbone'
]
