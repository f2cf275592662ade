"""Spectra -> peaks -> features -> reward (see docs/analysis.md)."""

from .errors import SpectrumError
from .features import absorption_features, cd_features, pl_features
from .peaks import Peak, PeakFit, fit_many, fit_peaks
from .reward import METRICS, Reward, compute_reward

__all__ = [
    "METRICS",
    "Peak",
    "PeakFit",
    "Reward",
    "SpectrumError",
    "absorption_features",
    "cd_features",
    "compute_reward",
    "fit_many",
    "fit_peaks",
    "pl_features",
]
