"""Seeded synthetic spectra with known truth, for tests and the benchmark.

The recipe (all draws from one ``numpy.random.Generator``):

* 2048 points evenly over 300-700 nm by default.
* 1-4 peaks; FWHM uniform in [10, 40] nm; centres at least 1.5 FWHM from either end and, for
  every pair, at least ``min_separation`` x their mean FWHM apart (1.0 by default: neighbours
  overlap at about half height, so shoulders are common).
* |height| uniform in [0.3, 1] then rescaled so the largest is exactly 1.
* shape per spectrum: Gaussian (half) or pseudo-Voigt with eta uniform in [0.2, 0.8] per peak.
* bisignate spectra (a share ``bisignate_share`` of those with 2+ peaks): random signs with at
  least one of each, as in a Cotton-effect CD couplet.
* baseline: offset uniform in [-0.2, 0.2] plus slope uniform in [-0.3, 0.3] per half range
  (reduced units), and for half of the spectra a scattering term s (300/x)^4, s in [0.2, 1].
* white Gaussian noise with sigma = 1 / snr (the tallest peak over the noise sigma).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import PeakModel


@dataclass
class SyntheticSpectrum:
    wavelength_nm: np.ndarray
    values: np.ndarray
    params: np.ndarray  # true parameter vector in PeakModel(pseudo_voigt, order 1, scattering)
    n_peaks: int
    shape: str  # "gaussian" or "pseudo_voigt" (how it was drawn)
    sigma: float
    bisignate: bool
    peaks: list[dict[str, float]] = field(default_factory=list)

    def model(self) -> PeakModel:
        """The model the true parameters belong to (pseudo-Voigt, linear + scattering)."""
        return PeakModel(self.wavelength_nm, self.n_peaks, "pseudo_voigt", 1, True)


def make_spectrum(
    rng: np.random.Generator,
    n_points: int = 2048,
    lo_nm: float = 300.0,
    hi_nm: float = 700.0,
    n_peaks: int | None = None,
    snr: float = 20.0,
    bisignate_share: float = 0.3,
    min_separation: float = 1.0,
    fwhm_range_nm: tuple[float, float] = (10.0, 40.0),
) -> SyntheticSpectrum:
    """Draw one spectrum (see the module docstring for the recipe)."""
    x = np.linspace(lo_nm, hi_nm, n_points)
    k = int(rng.integers(1, 5)) if n_peaks is None else n_peaks
    while True:
        fwhm = rng.uniform(*fwhm_range_nm, size=k)
        centres = np.empty(k)
        ok = True
        for i in range(k):
            for _ in range(200):
                c = rng.uniform(lo_nm + 1.5 * fwhm[i], hi_nm - 1.5 * fwhm[i])
                gaps = np.abs(centres[:i] - c) >= min_separation * 0.5 * (fwhm[:i] + fwhm[i])
                if gaps.all():
                    centres[i] = c
                    break
            else:
                ok = False
                break
        if ok:
            break
    heights = rng.uniform(0.3, 1.0, size=k)
    heights /= heights.max()
    bisignate = k >= 2 and rng.random() < bisignate_share
    if bisignate:
        signs = rng.choice([-1.0, 1.0], size=k)
        while abs(signs.sum()) == k:
            signs = rng.choice([-1.0, 1.0], size=k)
        heights *= signs
    gaussian = rng.random() < 0.5
    eta = np.zeros(k) if gaussian else rng.uniform(0.2, 0.8, size=k)
    offset = rng.uniform(-0.2, 0.2)
    slope = rng.uniform(-0.3, 0.3)
    scatter = rng.uniform(0.2, 1.0) if rng.random() < 0.5 else 0.0
    order = np.argsort(centres)
    peak_block = np.column_stack([centres, heights, fwhm, eta])[order]
    params = np.concatenate([peak_block.ravel(), [offset, slope, scatter]])
    model = PeakModel(x, k, "pseudo_voigt", 1, True)
    sigma = 1.0 / snr
    values = model.evaluate(params) + rng.normal(0.0, sigma, size=n_points)
    peaks = [
        {
            "centre_nm": float(r[0]),
            "height": float(r[1]),
            "fwhm_nm": float(r[2]),
            "eta": float(r[3]),
        }
        for r in peak_block
    ]
    return SyntheticSpectrum(
        wavelength_nm=x,
        values=values,
        params=params,
        n_peaks=k,
        shape="gaussian" if gaussian else "pseudo_voigt",
        sigma=sigma,
        bisignate=bisignate,
        peaks=peaks,
    )


def centre_crb(spec: SyntheticSpectrum) -> np.ndarray:
    """Cramer-Rao lower bound (nm, one sigma) of each true peak centre.

    From the Fisher information ``J^T J / sigma^2`` of the full model (all centres, heights,
    widths, etas and baseline terms free) at the true parameters.
    """
    model = spec.model()
    _, jac = model.residual_jacobian(spec.params, np.zeros_like(spec.values))
    cov = np.linalg.pinv(jac.T @ jac) * spec.sigma**2
    return np.sqrt(np.diag(cov)[0 : model.n_peak_params : model.stride])
