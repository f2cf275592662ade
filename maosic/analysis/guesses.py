"""Cheap starting guesses: where the peaks are, how wide, which sign.

Method: a matched filter in scale space. The spectrum is correlated (by FFT, one forward
transform and one inverse per scale) with Ricker ("Mexican hat") kernels, the negative second
derivative of a Gaussian, at a few widths spanning the allowed FWHM range. A Ricker kernel
ignores constant and linear baselines; divided by its noise gain, its response is a z-score of
"a peak is centred here". Candidates are maxima of ``|z| / width`` in both position and scale
(that score peaks when the kernel width matches the peak's, so it also estimates the width),
with ``|z| >= z_min``; one candidate is kept per peak. A strong peak also produces
opposite-signed side lobes in every response (0.45 of the centre for a Gaussian); in signed
mode those are dropped when a stronger opposite candidate sits next to them. The fitter looks
for each further peak in the residual of the previous fit, where such lobes are gone anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import kernel

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
# A unit-norm Ricker kernel of width a answers a Gaussian peak of width sigma in proportion to
# sigma a^2.5 / (sigma^2 + a^2)^1.5: the z-score keeps growing up to a = sqrt(5) sigma, where
# neighbours and baseline curvature leak in. Dividing by a makes the score peak at a = sigma,
# which both localises better and estimates the width.
SIDE_LOBE = 0.446  # Ricker side-lobe / centre ratio for a Gaussian peak: 2 exp(-3/2)


@dataclass(frozen=True)
class Candidate:
    centre_nm: float
    fwhm_nm: float
    sign: float  # +1 or -1
    z: float  # matched-filter signal-to-noise


@lru_cache(maxsize=64)
def _kernel_bank(
    n_points: int, step_nm: float, min_fwhm_nm: float, max_fwhm_nm: float, n_scales: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """FFTs of unit-noise-gain Ricker kernels (scales x freq), their sigmas (nm) and FFT size."""
    sig_lo = max(min_fwhm_nm / FWHM_PER_SIGMA, 1.5 * step_nm)
    sig_hi = max(max_fwhm_nm / FWHM_PER_SIGMA, sig_lo)
    sigmas_nm = np.geomspace(sig_lo, sig_hi, n_scales)
    half = int(np.ceil(5.0 * sigmas_nm[-1] / step_nm))
    half = min(half, n_points)
    # Output i of the circular correlation reads inputs i - half .. i + half (mod nfft). With the
    # data zero-padded to nfft >= n + half + 1, both the wrapped-around left reach and the right
    # reach land in the padding, so outputs 0..n-1 are the exact linear correlation.
    nfft = 1 << int(np.ceil(np.log2(n_points + half + 1)))
    t = np.arange(-half, half + 1) * step_nm
    kernels = np.zeros((n_scales, nfft))
    for i, a in enumerate(sigmas_nm):
        k = (1.0 - (t / a) ** 2) * np.exp(-0.5 * (t / a) ** 2)
        k -= k.mean()  # exact zero mean so a constant baseline gives no response
        k /= np.sqrt(np.sum(k * k))  # unit noise gain: response / sigma_noise is a z-score
        # Store time-reversed and rolled so that the FFT product is a centred correlation.
        kernels[i, : half + 1] = k[half:]
        kernels[i, nfft - half :] = k[:half]
    return np.fft.rfft(kernels, axis=1), sigmas_nm, t, nfft


def find_candidates(
    wavelength_nm: np.ndarray,
    values: np.ndarray,
    sigma_noise: float,
    min_fwhm_nm: float,
    max_fwhm_nm: float,
    signed: bool,
    z_min: float = 5.0,
    n_scales: int = 6,
    limit: int | None = None,
) -> list[Candidate]:
    """Peak candidates sorted by decreasing z.

    Args:
        wavelength_nm: sorted wavelengths; assumed close to evenly spaced.
        values: the spectrum.
        sigma_noise: white-noise sigma of ``values`` (see ``validate.noise_sigma``).
        min_fwhm_nm, max_fwhm_nm: range of peak widths to look for.
        signed: also look for negative peaks (CD).
        z_min: matched-filter z-score a candidate must reach.
        n_scales: number of kernel widths between the two FWHM limits.
        limit: stop after this many candidates (the strongest); ``None`` for all. Noisy
            spectra have hundreds of weak scale-space maxima above a low ``z_min``, and the
            one-per-peak suppression below is a Python loop over them.
    """
    n = values.size
    step = float((wavelength_nm[-1] - wavelength_nm[0]) / (n - 1))
    spectra, sigmas_nm, _, nfft = _kernel_bank(
        n, round(step, 9), float(min_fwhm_nm), float(max_fwhm_nm), n_scales
    )
    # Removing the mean keeps the zero padding from looking like a huge step at the edges.
    centred = values - values.mean()
    resp = np.fft.irfft(np.fft.rfft(centred, nfft) * spectra, nfft)[:, :n]
    noise = sigma_noise if sigma_noise > 0 else 1e-300
    z = resp / noise
    if not signed:
        z = np.maximum(z, 0.0)
    if limit is not None and limit < 1:
        raise ValueError(f"find_candidates: limit must be >= 1 or None, got {limit}")
    score = np.abs(z) / sigmas_nm[:, None]
    # Scale-space maxima and the one-per-peak suppression are a loop over every maximum (a
    # noisy spectrum has hundreds above a low z_min): compiled, in kernel.py.
    centres, fwhms, signs, zs = kernel.scale_space_peaks(
        score,
        z,
        sigmas_nm,
        np.ascontiguousarray(wavelength_nm, dtype=np.float64),
        step,
        float(z_min),
        0 if limit is None else int(limit),
    )
    cands = [
        Candidate(c, w, sg, zz)
        for c, w, sg, zz in zip(
            centres.tolist(), fwhms.tolist(), signs.tolist(), zs.tolist(), strict=True
        )
    ]
    cands.sort(key=lambda c: -c.z)
    return _drop_side_lobes(cands) if signed else cands


def _drop_side_lobes(cands: list[Candidate]) -> list[Candidate]:
    """Remove candidates explained as side lobes of a stronger, opposite-signed neighbour."""
    kept: list[Candidate] = []
    for c in cands:  # strongest first
        lobe = False
        for k in kept:
            if k.sign == c.sign:
                continue
            sig = k.fwhm_nm / FWHM_PER_SIGMA
            # Side lobes sit about sqrt(3) * sqrt(sigma_peak^2 + sigma_kernel^2) away.
            if abs(c.centre_nm - k.centre_nm) < 3.0 * sig and c.z < 0.6 * k.z:
                lobe = True
                break
        if not lobe:
            kept.append(c)
    return kept
