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
FOUR_LN2 = 4.0 * np.log(2.0)
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


# Truncated peaks at the ends of the window. The Ricker filter needs a kernel's whole support
# inside the data: a peak centred within about one FWHM of an end (or just beyond it) shows
# only a flank, which the filter answers weakly, at the wrong place, or as a step against the
# zero padding. At the ends the candidates come instead from a direct generalised likelihood
# ratio test: a bank of Gaussian profiles centred from EDGE_OUTSIDE FWHM outside to
# EDGE_INSIDE FWHM inside each end (further in, the filter's kernels fit inside the data), with
# the baseline terms projected out of the bank and of the data; the t-statistic of a profile's
# height is its z-score (the same statistic the linear screen uses).
EDGE_OUTSIDE = 0.5
EDGE_INSIDE = 1.0
EDGE_CENTRES_PER_FWHM = 4  # a start within w/8 of the centre is all LM needs
EDGE_SCALES = 4  # widths, geometric from min_fwhm up to the cap
EDGE_MAX_SPAN_SHARE = 0.1  # wider "peaks" at an end are baseline curvature, not peaks


@lru_cache(maxsize=16)
def _edge_bank(
    x0: float, x1: float, n: int, min_fwhm_nm: float, max_fwhm_nm: float, n_scales: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unit-height Gaussians near both ends (profiles x points, contiguous; the blue end's
    first), their squared norms, centres (nm) and FWHMs (nm)."""
    x = np.linspace(x0, x1, n)
    span = x1 - x0
    hi = max(min(max_fwhm_nm, EDGE_MAX_SPAN_SHARE * span), min_fwhm_nm)
    widths = np.geomspace(min_fwhm_nm, hi, n_scales)
    offsets = [
        (np.arange(-EDGE_OUTSIDE * w, EDGE_INSIDE * w + 1e-9, w / EDGE_CENTRES_PER_FWHM), w)
        for w in widths
    ]
    c = np.concatenate([x0 + o for o, _ in offsets] + [x1 - o for o, _ in offsets])
    w = np.concatenate([np.full(o.size, wi) for o, wi in offsets] * 2)
    bank_t = np.exp(-FOUR_LN2 * ((x[None, :] - c[:, None]) / w[:, None]) ** 2)
    return bank_t, np.einsum("ij,ij->i", bank_t, bank_t), c, w


def edge_candidates(
    wavelength_nm: np.ndarray,
    values: np.ndarray,
    sigma_noise: float,
    q_basis: np.ndarray,
    min_fwhm_nm: float,
    max_fwhm_nm: float,
    signed: bool,
    z_min: float = 5.0,
    n_scales: int = EDGE_SCALES,
    even: bool = True,
    proj2: np.ndarray | None = None,
) -> list[Candidate]:
    """At most one candidate per end of the window: a peak centred near or just beyond it.

    Args:
        wavelength_nm: sorted wavelengths (nm).
        values: the spectrum (or a residual).
        sigma_noise: white-noise sigma of ``values``.
        q_basis: orthonormal columns (points x terms) spanning the baseline, projected out
            of the data and of the profiles.
        min_fwhm_nm, max_fwhm_nm: range of widths (the widest is capped at a tenth of the span).
        signed: also negative peaks.
        z_min: the t-statistic a candidate must reach.
        n_scales: number of widths.
        even: the wavelengths are evenly spaced (the profile bank is cached for such grids);
            False for spectra with gaps (clipped points left out), which get their own.
        proj2: the profiles' squared norms off ``q_basis`` from an earlier call with the same
            grid and ``q_basis`` (see :func:`edge_bank_proj2`), to save recomputing them.
    """
    x = wavelength_nm
    n = x.size
    if n < 8 or sigma_noise <= 0:
        return []
    x0, x1 = float(x[0]), float(x[-1])
    bank_t, norm2, centres, fwhms = _edge_bank(
        round(x0, 9), round(x1, 9), n, float(min_fwhm_nm), float(max_fwhm_nm), n_scales
    )
    if not even:
        bank_t = np.exp(-FOUR_LN2 * ((x[None, :] - centres[:, None]) / fwhms[:, None]) ** 2)
        norm2 = np.einsum("ij,ij->i", bank_t, bank_t)
        proj2 = None
    # With P the projector off the baseline, (P b).(P r) = b.(P r) and |P b|^2 = |b|^2 -
    # |Q^T b|^2: products of the bank with vectors only, no projected copy of it.
    r = values - q_basis @ (q_basis.T @ values)
    if proj2 is None:
        proj2 = _proj2(bank_t, norm2, q_basis)
    # c = the data's component along each projected profile; profiles the baseline spans
    # almost entirely get c = 0 (a baseline shape, not a peak).
    c = np.where(proj2 > 1e-12 * norm2, (bank_t @ r) / np.sqrt(np.maximum(proj2, 1e-300)), 0.0)
    # A t-statistic with the noise taken as the larger of sigma_noise and what the profile
    # leaves unexplained: a broad profile that soaks up a little of some misfit elsewhere
    # (rough starting shapes of interior peaks) is not a peak at the end, while a real
    # truncated peak leaves only noise once its profile is in.
    dof = max(n - q_basis.shape[1] - 1, 1)
    left = np.maximum((float(r @ r) - c * c) / dof, sigma_noise**2)
    t = c / np.sqrt(left)
    if not signed:
        t = np.maximum(t, 0.0)
    out: list[Candidate] = []
    half = centres.size // 2  # the bank holds the blue end's profiles first, then the red's
    for idx in (slice(0, half), slice(half, None)):
        a = np.abs(t[idx])
        j = int(np.argmax(a))
        if a[j] >= z_min:
            k = j + (0 if idx.start == 0 else half)
            out.append(Candidate(float(centres[k]), float(fwhms[k]), float(np.sign(t[k])),
                                 float(a[j])))  # fmt: skip
    out.sort(key=lambda c: -c.z)
    return out


def _proj2(bank_t: np.ndarray, norm2: np.ndarray, q_basis: np.ndarray) -> np.ndarray:
    # One matrix-vector product per basis column: at these sizes (a few columns, ~60
    # profiles, ~256 points) that is several times faster than one small matrix product.
    out = norm2.copy()
    for j in range(q_basis.shape[1]):
        g = bank_t @ q_basis[:, j]
        out -= g * g
    return out


def edge_bank_proj2(
    wavelength_nm: np.ndarray,
    q_basis: np.ndarray,
    min_fwhm_nm: float,
    max_fwhm_nm: float,
    n_scales: int = EDGE_SCALES,
) -> np.ndarray:
    """Squared norms of the (cached, evenly sampled) edge profiles off ``q_basis``."""
    x0, x1 = float(wavelength_nm[0]), float(wavelength_nm[-1])
    bank_t, norm2, _, _ = _edge_bank(
        round(x0, 9), round(x1, 9), wavelength_nm.size, float(min_fwhm_nm), float(max_fwhm_nm),
        n_scales,
    )  # fmt: skip
    return _proj2(bank_t, norm2, q_basis)


def merge_edge_candidates(
    cands: list[Candidate], edge: list[Candidate], defer: bool
) -> list[Candidate]:
    """``cands`` (the filter's) with the end-of-window candidates ``edge`` merged in.

    With ``defer``, an edge candidate is left out where a filter candidate of the same sign
    lies within half a FWHM of it: the filter already proposes that feature, and its kernel
    shapes estimate an interior peak better. Without it, edge candidates are added as they are
    (the caller has measured their z beyond the filter's candidates).
    """
    out = list(cands)
    for e in edge:
        if defer and any(
            c.sign == e.sign and abs(c.centre_nm - e.centre_nm) < 0.5 * max(c.fwhm_nm, e.fwhm_nm)
            for c in cands
        ):
            continue
        out.append(e)
    if len(out) > len(cands):
        out.sort(key=lambda c: -c.z)
    return out
