"""Multi-peak fitting: K peaks (Gaussian, Lorentzian or pseudo-Voigt) on a low-order baseline.

Pipeline of :func:`fit_peaks`:

1. validate the spectrum (:mod:`.validate`); leave out samples where the detector clipped (a
   flat run at the extreme, flag ``"clipped"``); estimate the noise sigma from second
   differences;
2. bin long spectra to about ``SELECT_POINTS`` points for model selection (same span; bins
   never straddle a gap);
3. forward selection: the strongest matched-filter candidate (:mod:`.guesses`) in the data
   (first peak) or in the current residual (later peaks) is added, heights and baseline are
   solved linearly, everything is refined by bounded Levenberg-Marquardt with the analytic
   Jacobian (:mod:`.solver`), and the peak is kept only if the BIC falls (see docs/analysis.md
   for the linear screen that starts it); with ``n_peaks`` given, the free selection is
   brought to that count and compared by BIC with a start screened to it (:func:`_given_count`);
4. backward check: drop the least significant peak while that lowers the BIC;
5. signed fits left well above the noise are redone building one polarity first;
6. when a peak sits near an end or the residual at an end is in excess, selection runs again
   with end-of-window candidates (truncated peaks, :func:`.guesses.edge_candidates`);
7. the chosen model is refitted on the full data, and flagged ``"misfit"`` when its residual
   is well above the noise or holds a peak-like feature, ``"at_range_edge"`` when a peak is
   cut by the window.

Heights are signed when ``signed=True`` (CD couplets); otherwise they are bounded below by 0.
Uncertainties are one-sigma, from ``(J^T J)^-1`` scaled by the residual variance.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, overload

import numpy as np
from scipy.linalg.lapack import dposv, dpotrf, dpotri

from . import kernel
from .errors import SpectrumError
from .guesses import (
    Candidate,
    edge_bank_proj2,
    edge_candidates,
    find_candidates,
    merge_edge_candidates,
)
from .model import EDGE_STRIDE, FOUR_LN2, SHAPES, PeakModel, edge_columns, peak_area
from .threads import single_threaded
from .validate import as_float_array, check_spectrum, noise_sigma

ETA_START = 0.3  # starting Lorentzian fraction for pseudo-Voigt fits
FIRST_TRIES = 3  # candidates tried for the first peak of a forward selection
MISFIT_SIGMAS = 4.0  # residual variance this many standard errors above noise = misfit
LATER_TRIES = 2  # candidates tried at later steps when the first gives a degenerate fit


@dataclass
class Peak:
    """One fitted peak. Units: nm for centre and FWHM, signal units for height, x nm for area."""

    centre_nm: float
    height: float
    fwhm_nm: float
    area: float
    eta: float
    centre_err: float
    height_err: float
    fwhm_err: float
    area_err: float
    eta_err: float
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre_nm": self.centre_nm,
            "height": self.height,
            "fwhm_nm": self.fwhm_nm,
            "area": self.area,
            "eta": self.eta,
            "centre_err": self.centre_err,
            "height_err": self.height_err,
            "fwhm_err": self.fwhm_err,
            "area_err": self.area_err,
            "eta_err": self.eta_err,
            "flags": list(self.flags),
        }


@dataclass
class Edge:
    """One fitted absorption edge ``height / (1 + exp((x - centre) / width))`` (nm, signal)."""

    centre_nm: float
    height: float
    width_nm: float
    centre_err: float
    height_err: float
    width_err: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "centre_nm": self.centre_nm,
            "height": self.height,
            "width_nm": self.width_nm,
            "centre_err": self.centre_err,
            "height_err": self.height_err,
            "width_err": self.width_err,
        }


@dataclass
class PeakFit:
    """Result of :func:`fit_peaks`; ``peaks`` sorted by centre.

    ``baseline`` holds the polynomial coefficients in the reduced wavelength
    ``u = (x - x_mid) / x_half`` followed by the scattering amplitude when ``scattering``.
    ``reduced_chi2`` is the residual variance over the noise variance estimated independently
    from the data: near 1 for a good fit, well above 1 when structure is left unexplained.
    """

    shape: str
    peaks: list[Peak]
    baseline: list[float]
    baseline_order: int
    scattering: bool
    signed: bool
    r2: float
    rmse: float
    reduced_chi2: float
    noise_sigma: float
    aic: float
    bic: float
    n_points: int
    n_iter: int
    converged: bool
    flags: list[str]
    wavelength_range_nm: tuple[float, float]
    params: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    # Where the final model's fit started (same layout as params): lets a benchmark give
    # other solvers exactly the same starting guesses.
    start_params: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    edges: list[Edge] = field(default_factory=list)  # absorption edges (fit_peaks(edges=M))
    # The largest matched-filter z of a peak-like feature left in the residual (0 if none
    # reaches STRUCTURE_Z) and its wavelength (nm, NaN if none): what a "misfit" flag points at.
    residual_z: float = 0.0
    residual_nm: float = float("nan")

    @property
    def n_peaks(self) -> int:
        return len(self.peaks)

    def evaluate(self, wavelength_nm: Sequence[float] | np.ndarray) -> np.ndarray:
        """The fitted model (peaks + baseline) at ``wavelength_nm`` (nm).

        The baseline's reduced wavelength keeps the fitted spectrum's span, so values outside
        that span are an extrapolation.
        """
        return self.evaluate_with_error(wavelength_nm)[0]

    def evaluate_with_error(
        self, wavelength_nm: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fitted model and its one-sigma uncertainty (from the parameter covariance)."""
        x = as_float_array(wavelength_nm, "wavelength_nm")
        model = PeakModel(
            x,
            self.n_peaks,
            self.shape,
            self.baseline_order,
            self.scattering,
            span=self.wavelength_range_nm,
            n_edges=len(self.edges),
        )
        resid, jac = model.residual_jacobian(self.params, np.zeros_like(x))
        var = np.einsum("ij,jk,ik->i", jac, self.covariance, jac)
        return resid, np.sqrt(np.maximum(var, 0.0))

    def peak_z(self) -> list[float]:
        """|height| / height uncertainty of each peak (its significance)."""
        return [
            abs(p.height) / p.height_err if p.height_err > 0 else float("inf") for p in self.peaks
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "n_peaks": self.n_peaks,
            "peaks": [p.to_dict() for p in self.peaks],
            "edges": [e.to_dict() for e in self.edges],
            "baseline": list(self.baseline),
            "baseline_order": self.baseline_order,
            "scattering": bool(self.scattering),
            "signed": bool(self.signed),
            "r2": self.r2,
            "rmse": self.rmse,
            "reduced_chi2": self.reduced_chi2,
            "noise_sigma": self.noise_sigma,
            "aic": self.aic,
            "bic": self.bic,
            "n_points": self.n_points,
            "n_iter": int(self.n_iter),
            "converged": bool(self.converged),
            "flags": list(self.flags),
            "wavelength_range_nm": list(self.wavelength_range_nm),
            "residual_z": self.residual_z,
            "residual_nm": None if np.isnan(self.residual_nm) else self.residual_nm,
        }


@dataclass
class _Trial:
    params: np.ndarray
    model: PeakModel
    cost: float
    bic: float
    n_iter: int
    converged: bool
    residual: np.ndarray
    jacobian: np.ndarray
    start: np.ndarray


class _Fitter:
    """State shared by the fits of one spectrum (data, bounds, options)."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        shape: str,
        baseline_order: int,
        scattering: bool,
        signed: bool,
        min_fwhm: float,
        max_fwhm: float,
        max_iter: int,
        span: tuple[float, float] | None = None,
        n_edges: int = 0,
    ) -> None:
        # Contiguous float64: what the compiled fit takes without a copy per call.
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.n_edges = n_edges
        # Latest fitted edges (centre, height, width): the start of every later fit's edges.
        self.edge_rows = np.zeros((n_edges, EDGE_STRIDE))
        self.shape, self.order, self.scattering = shape, baseline_order, scattering
        self.signed = signed
        self.min_fwhm, self.max_fwhm = min_fwhm, max_fwhm
        self.max_iter = max_iter
        self.n = x.size
        self.span = (float(x[0]), float(x[-1])) if span is None else span
        self._models: dict[int, PeakModel] = {}
        self.cost_tol = 0.0
        self.noise_var = 0.0  # noise sigma^2 for the solver's step-size stop (0 = off)
        self.step_sigmas = 0.0
        self.y_range = float(np.ptp(y)) or 1.0
        # How far beyond either end a centre may go (nm): a peak centred just outside the
        # window still shows its flank, and pinning its centre at the end would bend its
        # height and width instead.
        self.centre_margin = 0.0
        # (start, stop) index ranges of evenly sampled runs when clipped points were left
        # out; None when the data are one run. Bins must not straddle a gap.
        self.segments: list[tuple[int, int]] | None = None
        self.q_basis: np.ndarray | None = None  # orthonormal baseline columns, when needed
        self.edge_proj2: np.ndarray | None = None  # edge profiles' norms off q_basis
        self.edge_search = False  # look for truncated peaks at the ends (_select_with_edges)

    def model(self, k: int) -> PeakModel:
        # One model per peak count: selection refits the same K many times, and building the
        # baseline basis each time is a measurable share of a small fit.
        model = self._models.get(k)
        if model is None:
            if self._models:
                model = next(iter(self._models.values())).with_peaks(k)
            else:
                model = PeakModel(
                    self.x,
                    k,
                    self.shape,
                    self.order,
                    self.scattering,
                    span=self.span,
                    n_edges=self.n_edges,
                )
            self._models[k] = model
        return model

    def bounds(self, model: PeakModel) -> tuple[np.ndarray, np.ndarray]:
        lo = np.full(model.n_params, -np.inf)
        hi = np.full(model.n_params, np.inf)
        s = model.stride
        end = model.n_peak_params
        lo[0:end:s] = self.x[0] - self.centre_margin
        hi[0:end:s] = self.x[-1] + self.centre_margin
        # Heights beyond a few times the data range only arise as cancelling pairs of peaks,
        # which fit noise; the bound keeps the solver out of that degenerate valley.
        hmax = 3.0 * self.y_range
        lo[1:end:s], hi[1:end:s] = (-hmax if self.signed else 0.0), hmax
        lo[2:end:s], hi[2:end:s] = self.min_fwhm, self.max_fwhm
        if s == 4:
            lo[3:end:s], hi[3:end:s] = 0.0, 1.0
        if self.n_edges:
            base = model.base_start
            span = float(self.x[-1] - self.x[0])
            step = span / max(self.n - 1, 1)
            lo[end:base:EDGE_STRIDE], hi[end:base:EDGE_STRIDE] = self.x[0], self.x[-1]
            lo[end + 1 : base : EDGE_STRIDE], hi[end + 1 : base : EDGE_STRIDE] = 0.0, hmax
            lo[end + 2 : base : EDGE_STRIDE] = max(step, 0.1 * self.min_fwhm)
            hi[end + 2 : base : EDGE_STRIDE] = 0.25 * span
        return lo, hi

    def linear_start(self, peaks: np.ndarray) -> np.ndarray | None:
        """Full parameter vector from peak rows (centre, _, fwhm, eta): heights+baseline by LSQ."""
        k = peaks.shape[0]
        model = self.model(k)
        p = np.zeros(model.n_params)
        blk = p[: model.n_peak_params].reshape(k, model.stride)
        blk[:, 0] = np.clip(
            peaks[:, 0], self.x[0] - self.centre_margin, self.x[-1] + self.centre_margin
        )
        blk[:, 1] = 1.0
        blk[:, 2] = np.clip(peaks[:, 2], self.min_fwhm, self.max_fwhm)
        if model.stride == 4:
            blk[:, 3] = peaks[:, 3]
        cols = [model.profiles(p)]
        m = self.n_edges
        if m:
            edges = model.edges(p)
            edges[:] = self.edge_rows
            cols.append(model.edge_profiles(p))
        design = np.column_stack([*cols, model.basis])
        coef = _solve_normal(design, self.y)
        if coef is None:
            return None
        if not self.signed and (coef[:k] < 0.0).any():
            # A negative height is held at zero and the rest solved again without it, so the
            # start is never worse than leaving that peak out.
            keep = np.flatnonzero(np.concatenate([coef[:k] >= 0.0, np.ones(coef.size - k, bool)]))
            sub = _solve_normal(design[:, keep], self.y)
            if sub is None:
                return None
            coef = np.zeros_like(coef)
            coef[keep] = sub
        blk[:, 1] = coef[:k] if self.signed else np.maximum(coef[:k], 0.0)
        if m:
            edges[:, 1] = np.maximum(coef[k : k + m], 0.0)
        p[model.base_start :] = coef[k + m :]
        return p

    def fit(self, p0: np.ndarray, rtol: float = 1e-6, reuse_jacobian: bool = False) -> _Trial:
        """Levenberg-Marquardt from ``p0``; ``self.cost_tol`` ends it once gains are tiny."""
        n_fixed = (self.order + 1) + int(self.scattering) + EDGE_STRIDE * self.n_edges
        k = (p0.size - n_fixed) // SHAPE_STRIDE[self.shape]
        model = self.model(k)
        lo, hi = self.bounds(model)
        start = np.array(p0, dtype=np.float64)  # a contiguous copy, kept in the trial
        # The compiled LM (kernel.py; the same algorithm as solver.levenberg_marquardt on
        # PeakModel, which the tests hold it to).
        params, resid, jt, cost, n_iter, converged = kernel.fit(
            self.x,
            self.y,
            model.basis_t,
            start,
            lo,
            hi,
            kernel.SHAPE_CODES[self.shape],
            k,
            self.n_edges,
            int(self.max_iter),
            float(rtol),
            float(self.cost_tol),
            1e-8,
            1e-3,
            float(self.noise_var),
            float(self.step_sigmas),
            bool(reuse_jacobian),
        )
        if self.n_edges:
            self.edge_rows = model.edges(params).copy()
        # Two peaks on the same spot with opposite signs fit noise, not the spectrum: such a
        # trial is never preferred in model selection.
        bic = (
            np.inf
            if _degenerate(model.split(params)[0])
            else self.criterion(cost, model.n_params, np.log(self.n))
        )
        return _Trial(
            params=params,
            model=model,
            cost=float(cost),
            bic=bic,
            n_iter=int(n_iter),
            converged=bool(converged),
            residual=resid,
            jacobian=jt.T,
            start=start,
        )

    def criterion(self, cost: float, n_params: int, penalty: float) -> float:
        rss = max(cost, 1e-300)
        return float(self.n * np.log(rss / self.n) + n_params * penalty)

    def rows(self, trial: _Trial) -> np.ndarray:
        """Peak rows (centre, height, fwhm, eta) of a trial."""
        pk, _ = trial.model.split(trial.params)
        out = np.zeros((pk.shape[0], 4))
        out[:, :3] = pk[:, :3]
        out[:, 3] = pk[:, 3] if pk.shape[1] == 4 else ETA_START
        return out


SHAPE_STRIDE = {"gaussian": 3, "lorentzian": 3, "pseudo_voigt": 4}


def _solve_normal(design: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Least-squares coefficients by a (lightly ridged) Cholesky solve, None if singular."""
    gram = design.T @ design
    ridge = gram + 1e-12 * np.trace(gram) * np.eye(gram.shape[0])
    _, coef, info = dposv(ridge, design.T @ y)
    return coef if info == 0 else None


DEGENERATE_GAP = 0.25  # peaks closer than this many FWHM cannot be told apart
# A peak centre may lie this many times the narrowest allowed FWHM beyond either end of the
# window (a truncated peak whose flank is all the window shows).
CENTRE_MARGIN = 2.0
# A peak whose centre lies within this many of its FWHM of an end is cut by the window
# (a Gaussian is still at 6 % of its height one FWHM out): flagged "at_range_edge".
EDGE_FWHM = 1.0


def _unclipped(y: np.ndarray, signed: bool) -> np.ndarray | None:
    """Mask of the points to keep when the detector clipped, None when it did not.

    A detector at its limit returns the same number for every sample beyond it; noise never
    repeats a float exactly, so ``CLIP_RUN`` or more consecutive samples equal to the maximum
    (or, for signed data, the minimum) show the limit, and every sample at it is clipped. A
    level of exactly zero, or the median level of a spectrum mostly elsewhere, does not count:
    those are the exact zeros of a noiseless synthetic baseline, not a clipped peak.
    """
    keep = np.ones(y.size, dtype=bool)
    found = False
    lo, hi = float(y.min()), float(y.max())
    if lo == hi:
        return None  # constant: "flat", not clipped
    for top in (hi, lo) if signed else (hi,):
        at = y == top
        count = int(at.sum())
        # A detector limit lies beyond zero and beyond the bulk of the data (or holds most of
        # it); exact zeros and the median level are a noiseless baseline.
        if count < CLIP_RUN or top == 0.0:
            continue
        if 2 * count <= y.size and top == float(np.median(y)):
            continue
        edges = np.flatnonzero(np.diff(np.concatenate(([0], at.view(np.int8), [0]))))
        if (edges[1::2] - edges[0::2]).max() >= CLIP_RUN:
            # The run shows the limit; single samples at it are clipped too (noise that
            # straddles the limit makes clipped and good samples alternate).
            keep[at] = False
            found = True
    return keep if found else None


CLIP_RUN = 3  # consecutive samples exactly at the extreme that mean the detector clipped


def _degenerate(peak_rows: np.ndarray) -> bool:
    if peak_rows.shape[0] < 2:
        return False
    c, w = peak_rows[:, 0], peak_rows[:, 2]
    gap = np.abs(c[:, None] - c[None, :])
    limit = DEGENERATE_GAP * np.minimum(w[:, None], w[None, :])
    np.fill_diagonal(gap, np.inf)
    return bool((gap < limit).any())


def spd_inverse(a: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric positive definite matrix via LAPACK Cholesky, None if not SPD.

    Called for every candidate model; numpy's generic inverse costs far more per call at
    these sizes.
    """
    if a.shape[0] == 0:
        return np.zeros((0, 0))
    chol, info = dpotrf(a, lower=0, clean=1)
    if info != 0:
        return None
    inv, info = dpotri(chol, lower=0)
    if info != 0:
        return None
    lower = _lower_indices(inv.shape[0])
    inv[lower] = inv.T[lower]  # LAPACK filled the upper triangle only
    return inv if np.isfinite(inv).all() else None


@lru_cache(maxsize=32)
def _lower_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.tril_indices(n, -1)


def _candidate_rows(cands: Sequence[Candidate]) -> np.ndarray:
    return np.array([[c.centre_nm, c.sign, c.fwhm_nm, ETA_START] for c in cands]).reshape(-1, 4)


def _covariance(trial: _Trial, n: int) -> tuple[np.ndarray, bool]:
    dof = max(n - trial.model.n_params, 1)
    jtj = trial.jacobian.T @ trial.jacobian
    scale = trial.cost / dof
    inv = spd_inverse(jtj)
    if inv is not None:
        return inv * scale, True
    return np.linalg.pinv(jtj) * scale, False


def _wald_z(trial: _Trial, n: int) -> np.ndarray:
    """|height| / sigma(height) for every peak of a trial."""
    cov, _ = _covariance(trial, n)
    s = trial.model.stride
    var = np.diag(cov)[1 : trial.model.n_peak_params : s]
    h = trial.params[1 : trial.model.n_peak_params : s]
    return np.abs(h) / np.sqrt(np.maximum(var, 1e-300))


@single_threaded()
def fit_peaks(
    wavelength_nm: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    n_peaks: int | None = None,
    shape: str = "gaussian",
    baseline_order: int = 1,
    signed: bool = False,
    scattering: bool = False,
    max_peaks: int = 6,
    min_fwhm_nm: float = 5.0,
    max_fwhm_nm: float = 100.0,
    z_min: float = 5.0,
    max_iter: int = 200,
    where: str = "spectrum",
    edges: int = 0,
) -> PeakFit:
    """Fit a sum of peaks on a baseline to one spectrum.

    Args:
        wavelength_nm: wavelengths (nm), any order; sorted internally.
        values: signal at each wavelength (absorbance, mdeg, counts).
        n_peaks: number of peaks; ``None`` chooses it by BIC (up to ``max_peaks``).
        shape: ``"gaussian"``, ``"lorentzian"`` or ``"pseudo_voigt"`` (see ``model.SHAPES``).
        baseline_order: polynomial order of the baseline (0-3); -1 for no polynomial.
        signed: allow negative heights (CD); otherwise heights are >= 0.
        scattering: add a ``(x_min / x)**4`` scattering term to the baseline (needs x > 0).
        max_peaks: upper limit when choosing K.
        min_fwhm_nm, max_fwhm_nm: allowed FWHM (nm); also the range the guesses search.
        z_min: matched-filter signal-to-noise a starting guess must reach.
        max_iter: Levenberg-Marquardt iterations per fit.
        where: name of the spectrum in error messages.
        edges: number of absorption edges (broadened steps falling to the red, see
            :mod:`.model`) in the model, 0-2; only for unsigned fits.

    Returns:
        A :class:`PeakFit`. A spectrum with no detectable peak (flat) returns a baseline-only
        fit with the flag ``"no_peaks"`` when ``n_peaks`` is None. Fits the data do not
        support are flagged (``"misfit"``, ``"at_range_edge"``, ``"clipped"``; see
        docs/analysis.md for what each means and what to do).

    Raises:
        SpectrumError: bad arrays (see :func:`.validate.check_spectrum`), bad options,
            ``n_peaks`` given for a spectrum without any structure (``reason="flat"``) or
            more peaks than can be told apart (``reason="degenerate"``), or a spectrum nearly
            all clipped (``reason="saturated"``).
    """
    if shape not in SHAPES:
        raise SpectrumError(
            f"unknown shape {shape!r}; expected one of {sorted(SHAPES)}", where="shape"
        )
    if not -1 <= baseline_order <= 3:
        raise SpectrumError(f"must be in -1..3, got {baseline_order}", where="baseline_order")
    if n_peaks is not None and not 0 <= n_peaks <= 20:
        raise SpectrumError(f"must be in 0..20 or None, got {n_peaks}", where="n_peaks")
    if not 1 <= max_peaks <= 20:
        raise SpectrumError(f"must be in 1..20, got {max_peaks}", where="max_peaks")
    if not 0 <= edges <= MAX_EDGES:
        raise SpectrumError(f"must be in 0..{MAX_EDGES}, got {edges}", where="edges")
    if edges and signed:
        raise SpectrumError("absorption edges need an unsigned fit", where="edges")
    if not (0 < min_fwhm_nm < max_fwhm_nm):
        raise SpectrumError(
            f"need 0 < min_fwhm_nm < max_fwhm_nm, got {min_fwhm_nm}, {max_fwhm_nm}",
            where="min_fwhm_nm",
        )
    x, y, flags = check_spectrum(wavelength_nm, values, where=where, min_points=8)
    if scattering and x[0] <= 0:
        raise SpectrumError("scattering baseline needs wavelengths > 0 nm", where=where)
    span = float(x[-1] - x[0])
    step = span / (x.size - 1)
    min_fwhm = max(min_fwhm_nm, 2.0 * step)
    max_fwhm = min(max_fwhm_nm, span)
    if min_fwhm >= max_fwhm:
        raise SpectrumError(
            f"FWHM range {min_fwhm_nm}-{max_fwhm_nm} nm does not fit a {span:g} nm spectrum "
            f"sampled every {step:g} nm",
            where=where,
        )
    kept = _unclipped(y, signed)
    segments = None
    if kept is not None:
        if int(kept.sum()) < max(8, y.size // 4):
            raise SpectrumError(
                f"{y.size - int(kept.sum())} of {y.size} points sit flat at the detector's "
                "limit; too few are left to fit",
                where=where,
                reason="saturated",
            )
        flags.append("clipped")
        x, y = x[kept], y[kept]
    # Runs of evenly sampled points: a gap (clipped points left out here, or wavelengths a
    # caller left out, e.g. where the absorbance clipped under a CD spectrum) ends a run, and
    # bins must not straddle it. Steps over 1.5x the smallest count as gaps; a grid whose step
    # merely drifts gets harmless extra runs.
    steps = np.diff(x)
    cuts = np.flatnonzero(steps > 1.5 * float(steps.min())) + 1
    if cuts.size:
        bounds = np.concatenate(([0], cuts, [x.size]))
        segments = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    fitter = _Fitter(
        x, y, shape, baseline_order, scattering, signed, min_fwhm, max_fwhm, max_iter, n_edges=edges
    )
    fitter.centre_margin = CENTRE_MARGIN * min_fwhm
    fitter.segments = segments
    sigma = noise_sigma(y)
    if float(np.ptp(y)) == 0.0 or sigma == 0.0 and np.allclose(y, y[0]):
        if n_peaks:
            raise SpectrumError(
                "the spectrum is constant; no peak can be fitted", where=where, reason="flat"
            )
        return _finish(
            fitter, fitter.fit(_baseline_only(fitter)), sigma, flags + ["no_peaks", "flat"]
        )
    if sigma == 0.0:
        sigma = 1e-12 * float(np.ptp(y))  # noiseless synthetic data
    # Model selection runs on a binned copy (about SELECT_POINTS points): peaks are many
    # samples wide, so averaging neighbours keeps nearly all the information at a fraction
    # of the cost. The chosen model is then refined on the full data.
    if edges:
        fitter.edge_rows = _edge_start(fitter, edges, sigma)
    coarse, coarse_sigma = _binned(fitter, sigma)
    # Gains below a thousandth of the noise variance cannot change a BIC comparison.
    coarse.cost_tol = SELECT_COST_TOL * coarse_sigma**2
    coarse.noise_var, coarse.step_sigmas = coarse_sigma**2, SELECT_STEP_SIGMAS
    if n_peaks is None:
        trial = _select_with_edges(coarse, coarse_sigma, max_peaks, z_min)
    else:
        trial = _given_count(coarse, coarse_sigma, n_peaks, max_peaks, z_min)
        if not np.isfinite(trial.bic):
            raise SpectrumError(
                f"{n_peaks} peaks cannot be told apart in this spectrum: every fit with that "
                "many puts two of them on the same spot",
                where=where,
                reason="degenerate",
            )
    start = trial.start
    # The final fit refines the chosen model on the data (or on bins far finer than any peak,
    # see _final_fitter) until a step gains less than 1e-4 sigma^2 or moves no parameter by
    # more than FINAL_STEP_SIGMAS of its uncertainty.
    final, final_sigma = _final_fitter(fitter, sigma, trial)
    final.cost_tol = FINAL_COST_TOL * final_sigma**2
    final.noise_var, final.step_sigmas = final_sigma**2, FINAL_STEP_SIGMAS
    trial = final.fit(trial.params, rtol=1e-12, reuse_jacobian=True)
    trial.start = start
    cov, ok = _covariance(trial, final.n)
    if final is not fitter:
        # Quality figures (residuals, R^2, AIC/BIC) always refer to the data as given, so
        # that fits of one spectrum stay comparable however their final fit was binned.
        full = fitter.model(trial.model.n_peaks)
        trial.residual = full.evaluate(trial.params) - fitter.y
        trial.cost = float(trial.residual @ trial.residual)
        trial.model = full
        trial.bic = fitter.criterion(trial.cost, full.n_params, np.log(fitter.n))
    if fitter.n_edges:
        fitter, trial, cov, ok = _drop_unsupported_edges(fitter, trial, sigma, cov, ok)
    if trial.model.n_peaks == 0:
        flags.append("no_peaks")
    return _finish(fitter, trial, sigma, flags, cov, ok)


MAX_EDGES = 2
EDGE_GRID_PER_SPAN = 40  # starting edges are looked for every span/40 nm, that wide
# An edge whose height is below this many standard errors is checked by refitting without it.
EDGE_Z_CHECK = 5.0


def _drop_unsupported_edges(
    fitter: _Fitter, trial: _Trial, sigma: float, cov: np.ndarray, ok: bool
) -> tuple[_Fitter, _Trial, np.ndarray, bool]:
    """Remove absorption edges the data do not support, weakest first, while BIC falls.

    ``edges=M`` asks for M edges in the model, but a spectrum may hold fewer (the continuum
    outside the window, or a baseline the polynomial already covers); such an edge comes out
    with a height near zero and a huge error, or stands in for baseline curvature. Reporting
    it would be a made-up feature, so it is refitted away when that lowers BIC on the data as
    given. Only weak edges (height z below ``EDGE_Z_CHECK``) are tried, so a clear edge costs
    nothing.
    """
    while fitter.n_edges:
        model = trial.model
        base = model.n_peak_params
        heights = trial.params[base + 1 : model.base_start : EDGE_STRIDE]
        errs = np.sqrt(np.maximum(np.diag(cov)[base + 1 : model.base_start : EDGE_STRIDE], 0.0))
        z = np.where(errs > 0, np.abs(heights) / np.where(errs > 0, errs, 1.0), np.inf)
        j = int(np.argmin(z))
        if z[j] >= EDGE_Z_CHECK:
            break
        fewer = copy.copy(fitter)
        fewer.n_edges = fitter.n_edges - 1
        fewer._models = {}
        fewer.edge_rows = np.delete(fitter.edge_rows, j, axis=0)
        fewer.cost_tol = FINAL_COST_TOL * sigma**2
        fewer.noise_var, fewer.step_sigmas = sigma**2, FINAL_STEP_SIGMAS
        block = np.arange(base + EDGE_STRIDE * j, base + EDGE_STRIDE * (j + 1))
        refit = fewer.fit(np.delete(trial.params, block), rtol=1e-12, reuse_jacobian=True)
        if not refit.bic < trial.bic:
            break
        refit.start = np.delete(trial.start, block)  # same layout as the reported parameters
        new_cov, new_ok = _covariance(refit, fewer.n)
        fitter, trial, cov, ok = fewer, refit, new_cov, new_ok
    return fitter, trial, cov, ok


def _edge_start(fitter: _Fitter, m: int, sigma: float) -> np.ndarray:
    """Starting rows (centre, height, width) of ``m`` edges, strongest first.

    A scan over edge positions on a grid: the matched-filter peak candidates (as Gaussians) and
    the baseline terms are projected out of the data and of every grid edge, and the edge that
    explains most of what is left (largest drop in the residual sum of squares, with a positive
    height) is taken; the next edge is looked for away from it. One least-squares solve with a
    right-hand side per grid edge, no iterative fit. ``sigma`` is the data's noise (fit_peaks'
    estimate), for the peak candidates' z-scores.
    """
    x, y = fitter.x, fitter.y
    span = float(x[-1] - x[0])
    width = max(span / EDGE_GRID_PER_SPAN, fitter.min_fwhm / 2.0)
    grid = np.arange(x[0] + width, x[-1] - width / 2.0, width)
    rows = np.zeros((m, EDGE_STRIDE))
    rows[:, 0], rows[:, 2] = float(x[0]), width  # no step in the data: a flat edge at the end
    if grid.size == 0:
        return rows
    steps = edge_columns(x, grid, np.full(grid.size, width))
    cands = find_candidates(x, y, sigma, fitter.min_fwhm, fitter.max_fwhm, False, limit=6)
    peaks = [np.exp(-FOUR_LN2 * ((x - c.centre_nm) / c.fwhm_nm) ** 2) for c in cands]
    known = np.column_stack([*peaks, fitter.model(0).basis])
    # Residuals of the data and of each grid edge after the peaks and the baseline.
    q, _ = np.linalg.qr(known)
    both = np.column_stack([y, steps])
    both -= q @ (q.T @ both)
    r, s = both[:, 0], both[:, 1:]
    norm = (s * s).sum(axis=0)
    norm[norm <= 0] = np.inf
    proj = (s.T @ r) / norm  # height each edge would get
    gain = proj * proj * norm
    gain[proj <= 0] = 0.0  # edges fall to the red: a negative height is not an edge
    for j in range(m):
        i = int(np.argmax(gain))
        if gain[i] <= 0:
            break
        rows[j] = (float(grid[i]), float(proj[i]), width)
        gain[max(i - 2, 0) : i + 3] = 0.0
    return rows


SELECT_POINTS = 256  # model selection works on about this many binned points
SELECT_MAX_ITER = 50
SELECT_COST_TOL = 1e-3
FINAL_COST_TOL = 1e-4
# Fits also stop once a step moves every parameter by less than this many of its own one-sigma
# uncertainties (see solver.levenberg_marquardt). Near the optimum LM converges quadratically,
# so what such a step leaves undone is a small fraction of that again: far below anything a BIC
# comparison or a reported value can resolve (the benchmark's centre errors stay at the
# Cramer-Rao bound).
SELECT_STEP_SIGMAS = 0.2
FINAL_STEP_SIGMAS = 0.25


# The final fit may run on bin averages when that cannot matter: averaging f samples of step
# dx widens a Gaussian of FWHM w as if by a curvature error of about 0.23 (f dx / w)^2 of its
# height h (centres stay unbiased). Binning is used only while that stays under this share of
# the binned noise sigma / sqrt(f), i.e. far inside every parameter's uncertainty; it halves to
# quarters the cost of a long spectrum's final fit, and noiseless data are never binned.
FINAL_BIN_BIAS = 0.05


def _final_fitter(fitter: _Fitter, sigma: float, trial: _Trial) -> tuple[_Fitter, float]:
    """The fitter for the final fit: the full data, or bin averages far finer than any peak."""
    model = trial.model
    if model.n_peaks == 0:
        return fitter, sigma
    peaks = trial.params[: model.n_peak_params].reshape(model.n_peaks, model.stride)
    w_steps = float(np.min(peaks[:, 2])) * (fitter.n - 1) / (fitter.x[-1] - fitter.x[0])
    snr = float(np.max(np.abs(peaks[:, 1]))) / sigma
    # 0.23 f^2 (dx/w)^2 h <= FINAL_BIN_BIAS sigma / sqrt(f), solved for f.
    factor = int((FINAL_BIN_BIAS / 0.23 * w_steps**2 / max(snr, 1e-12)) ** 0.4)
    factor = min(factor, fitter.n // SELECT_POINTS)
    if factor < 2:
        return fitter, sigma
    return _binned(fitter, sigma, factor, fitter.max_iter)


def _binned(
    fitter: _Fitter, sigma: float, factor: int | None = None, max_iter: int = SELECT_MAX_ITER
) -> tuple[_Fitter, float]:
    """A fitter on bin averages of ``factor`` points (default: about ``SELECT_POINTS`` bins,
    same span) and its noise sigma; its fits get at most ``max_iter`` iterations."""
    if factor is None:
        factor = fitter.n // SELECT_POINTS
    if factor < 2:
        # Short spectra are selected on the data itself, but with the same iteration cap: a
        # misspecified model (e.g. Gaussians standing in for a band-edge continuum) otherwise
        # crawls through hundreds of iterations that cannot change the ranking.
        capped = copy.copy(fitter)
        capped.max_iter = min(fitter.max_iter, SELECT_MAX_ITER)
        return capped, sigma
    if fitter.segments is None:
        m = (fitter.n // factor) * factor
        xb = fitter.x[:m].reshape(-1, factor).mean(axis=1)
        yb = fitter.y[:m].reshape(-1, factor).mean(axis=1)
    else:
        # Bins stay inside each run of kept points: a bin across a gap of clipped points
        # would put the mean of two flanks at the wavelength of the clipped top.
        xs, ys = [], []
        for a, b in fitter.segments:
            m = ((b - a) // factor) * factor
            xs.append(fitter.x[a : a + m].reshape(-1, factor).mean(axis=1))
            ys.append(fitter.y[a : a + m].reshape(-1, factor).mean(axis=1))
        xb, yb = np.concatenate(xs), np.concatenate(ys)
    # Selection fits only need to rank models; a stalled one is cut short, the final fit on
    # the full data gets the full iteration budget.
    coarse = _Fitter(
        xb,
        yb,
        fitter.shape,
        fitter.order,
        fitter.scattering,
        fitter.signed,
        fitter.min_fwhm,
        fitter.max_fwhm,
        min(fitter.max_iter, max_iter),
        span=fitter.span,
        n_edges=fitter.n_edges,
    )
    coarse.edge_rows = fitter.edge_rows.copy()
    coarse.y_range = fitter.y_range
    coarse.centre_margin = fitter.centre_margin
    if fitter.segments is not None:
        sizes = [((b - a) // factor) for a, b in fitter.segments]
        ends = np.cumsum(sizes)
        coarse.segments = [(int(e - k), int(e)) for e, k in zip(ends, sizes, strict=True)]
    return coarse, sigma / np.sqrt(factor)


def _baseline_only(fitter: _Fitter) -> np.ndarray:
    p = fitter.linear_start(np.zeros((0, 4)))
    if p is not None:
        return p
    p = np.zeros(EDGE_STRIDE * fitter.n_edges + fitter.order + 1 + int(fitter.scattering))
    p[: EDGE_STRIDE * fitter.n_edges] = fitter.edge_rows.ravel()
    return p


def _start(fitter: _Fitter, rows: np.ndarray) -> _Trial:
    p0 = fitter.linear_start(rows)
    if p0 is None:
        p0 = _baseline_only(fitter) if rows.size == 0 else None
    if p0 is None:
        raise SpectrumError("the starting design matrix is singular", where="fit")
    return fitter.fit(p0)


def _forward(
    fitter: _Fitter,
    sigma: float,
    max_peaks: int,
    z_min: float,
    k_exact: int | None,
    trial: _Trial | None = None,
) -> _Trial:
    """Forward selection: add the strongest residual peak, refit all, keep it if BIC falls.

    Looking for the next peak only in the residual of a full fit means the side lobes and
    tails of the peaks already found are modelled, so they are not mistaken for new peaks,
    and every refit starts from a converged solution (a few iterations each). With
    ``k_exact`` the loop adds exactly that many peaks whatever the BIC says.
    """
    if trial is None:
        trial = fitter.fit(_baseline_only(fitter))
    target = max_peaks if k_exact is None else k_exact
    while trial.model.n_peaks < target:
        # The first peak is looked for in the data itself: a baseline fitted alone bends
        # through the peaks and leaves dips that could pass for negative peaks.
        signal = fitter.y if trial.model.n_peaks == 0 else -trial.residual
        cands = find_candidates(
            fitter.x,
            signal,
            sigma,
            fitter.min_fwhm,
            fitter.max_fwhm,
            fitter.signed,
            z_min=z_min if k_exact is None else 0.0,
            limit=FIRST_TRIES + 6,  # a few spare for the side lobes dropped in signed mode
        )
        cands = merge_edge_candidates(
            cands,
            _edge_candidates(fitter, signal, sigma, z_min if k_exact is None else 0.0),
            defer=True,
        )
        if cands:
            # The first pick decides the basin the rest is built in (a valley between two
            # peaks looks like a negative peak to the filter), so the first step tries the
            # strongest few candidates and keeps the best fit; later steps take the strongest.
            if trial.model.n_peaks == 0:
                # Rank the options by their linear fit (cheap), refine the best; go on to
                # the next only if the refined fit is no better than no peak at all.
                ranked = sorted(cands[:FIRST_TRIES], key=lambda c: _linear_cost(fitter, c))
                for c in ranked:
                    bigger = _start(fitter, _candidate_rows([c]))
                    if bigger.bic < trial.bic:
                        break
            else:
                # Later steps take the strongest candidate that gives a usable fit.
                for c in cands[:LATER_TRIES]:
                    bigger = _start(fitter, np.vstack([fitter.rows(trial), _candidate_rows([c])]))
                    if np.isfinite(bigger.bic):
                        break
        elif k_exact is not None:  # nothing stands out: start at the largest residual
            i = int(np.argmax(np.abs(trial.residual)))
            new = np.array([[fitter.x[i], 1.0, 2.0 * fitter.min_fwhm, ETA_START]])
            bigger = _start(fitter, np.vstack([fitter.rows(trial), new]))
        else:
            break
        if k_exact is None and bigger.bic >= trial.bic:
            break
        trial = bigger
    return trial


def _edge_candidates(
    fitter: _Fitter,
    signal: np.ndarray,
    sigma: float,
    z_min: float,
    known: Sequence[Candidate] = (),
) -> list[Candidate]:
    """Truncated peaks centred near or just beyond either end (see guesses.edge_candidates),
    beyond the baseline, the absorption edges and the ``known`` candidates' Gaussians."""
    if not fitter.edge_search:
        return []
    if fitter.n_edges or known:
        cols = [fitter.model(0).basis]
        if fitter.n_edges:
            e = fitter.edge_rows
            cols.append(edge_columns(fitter.x, e[:, 0], e[:, 2]))
        if known:
            c = np.array([k.centre_nm for k in known])
            w = np.array([k.fwhm_nm for k in known])
            cols.append(np.exp(-FOUR_LN2 * ((fitter.x[:, None] - c) / w) ** 2))
        q = np.linalg.qr(np.hstack(cols))[0]
        proj2 = None
    else:
        # The baseline's orthonormal basis, and the profiles' norms off it, are the same for
        # every call on one fitter.
        if fitter.q_basis is None:
            if fitter.segments is None:
                fitter.q_basis, fitter.edge_proj2 = _plain_edge_basis(
                    round(float(fitter.x[0]), 9),
                    round(float(fitter.x[-1]), 9),
                    fitter.n,
                    fitter.span,
                    fitter.order,
                    fitter.scattering,
                    fitter.min_fwhm,
                    fitter.max_fwhm,
                )
            else:
                fitter.q_basis = np.linalg.qr(fitter.model(0).basis)[0]
        q, proj2 = fitter.q_basis, fitter.edge_proj2
    return edge_candidates(
        fitter.x,
        signal,
        sigma,
        q,
        fitter.min_fwhm,
        fitter.max_fwhm,
        fitter.signed,
        z_min=max(z_min, EDGE_Z_MIN),
        even=fitter.segments is None,
        proj2=proj2,
    )


@lru_cache(maxsize=16)
def _plain_edge_basis(
    x0: float,
    x1: float,
    n: int,
    span: tuple[float, float],
    order: int,
    scattering: bool,
    min_fwhm: float,
    max_fwhm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal baseline columns of an evenly sampled grid and the edge profiles' squared
    norms off them: the same for every spectrum of one instrument set-up, so cached."""
    x = np.linspace(x0, x1, n)
    q = np.linalg.qr(PeakModel(x, 0, "gaussian", order, scattering, span=span).basis)[0]
    q.setflags(write=False)
    proj2 = edge_bank_proj2(x, q, min_fwhm, max_fwhm)
    proj2.setflags(write=False)
    return q, proj2


# An end-of-window candidate needs at least this z even when the caller asks for less (a given
# peak count searches with z_min 0): below it the bank's best profile is noise.
EDGE_Z_MIN = 3.0


def _linear_cost(fitter: _Fitter, cand: Candidate) -> float:
    """Residual sum of squares of one candidate peak + baseline, heights solved linearly."""
    p = fitter.linear_start(_candidate_rows([cand]))
    if p is None:
        return np.inf
    r = fitter.model(1).evaluate(p) - fitter.y
    return float(r @ r)


def _prune(fitter: _Fitter, trial: _Trial) -> _Trial:
    """Backward check: a peak found early can become redundant once its neighbours are in.

    The Wald z^2 of a height approximates the BIC gain of keeping its peak, so only the
    weakest peak is refitted away, and only while that lowers the BIC.
    """
    n = fitter.n
    penalty = SHAPE_STRIDE[fitter.shape] * np.log(n)
    while trial.model.n_peaks > 0:
        z = _wald_z(trial, n)
        j = int(np.argmin(z))
        if z[j] ** 2 >= penalty:
            break
        rows = np.delete(fitter.rows(trial), j, axis=0)
        smaller = _start(fitter, rows) if rows.size else fitter.fit(_baseline_only(fitter))
        if smaller.bic > trial.bic:
            break
        trial = smaller
    return trial


def _misfit(fitter: _Fitter, trial: _Trial, sigma: float) -> bool:
    """True when the residual variance is well above the noise: a wrong basin, not noise."""
    dof = max(fitter.n - trial.model.n_params, 1)
    return trial.cost / dof > sigma**2 * (1.0 + MISFIT_SIGMAS * np.sqrt(2.0 / dof))


def _one_sided(fitter: _Fitter, sigma: float, max_peaks: int, z_min: float, sign: float) -> _Trial:
    """Forward selection that first finds only peaks of one sign, then allows both.

    A signed search can settle for negative peaks between positive ones on a raised baseline
    (or the reverse); building the dominant polarity first avoids that basin.
    """
    side = _Fitter(
        fitter.x,
        sign * fitter.y,
        fitter.shape,
        fitter.order,
        fitter.scattering,
        False,
        fitter.min_fwhm,
        fitter.max_fwhm,
        fitter.max_iter,
        span=fitter.span,
    )
    side.centre_margin, side.segments = fitter.centre_margin, fitter.segments
    found = _forward(side, sigma, max_peaks, z_min, None)
    p = found.params.copy()
    m = found.model
    p[1 : m.n_peak_params : m.stride] *= sign
    p[m.base_start :] *= sign
    return _forward(fitter, sigma, max_peaks, z_min, None, trial=fitter.fit(p))


SCREEN_T = 5.0  # linear t-statistic a candidate's height needs to survive the screen


def _all_candidates(fitter: _Fitter, sigma: float, max_peaks: int, z_min: float) -> _Trial | None:
    """Every candidate at once, screened by a linear fit, then one nonlinear fit.

    The matched filter also answers valleys between peaks and baseline curvature (as broad
    peaks of the other sign). With all candidates' profiles and the baseline in one linear
    least-squares design, such impostors get heights that are insignificant or of the wrong
    sign, so they are dropped (weakest first, re-solving each time) before any nonlinear work.
    """
    cands = find_candidates(
        fitter.x,
        fitter.y,
        sigma,
        fitter.min_fwhm,
        fitter.max_fwhm,
        fitter.signed,
        z_min=z_min,
        limit=2 * max_peaks + 4,
    )
    # End-of-window candidates are tested for what the filter's candidates leave unexplained:
    # on the raw data the flank of an interior peak would otherwise pass for one.
    known = cands[: max_peaks + 3]
    edge = _edge_candidates(fitter, fitter.y, sigma, z_min, known)
    cands = merge_edge_candidates(known, edge, defer=False)
    if not cands:
        return None
    rows = _candidate_rows(cands[: max_peaks + 3 + len(edge)])
    keep = _screen(fitter, rows, sigma, max_peaks)
    if keep is None:
        return None
    return _start(fitter, keep)


def _screen(fitter: _Fitter, rows: np.ndarray, sigma: float, max_peaks: int) -> np.ndarray | None:
    """The candidate rows that survive the linear screen (see :func:`_all_candidates`).

    One least-squares solve with every candidate; then the weakest is dropped while any is
    below ``SCREEN_T`` (or there are more than ``max_peaks``), by downdating the inverse normal
    matrix instead of solving again: each drop costs a few tiny matrix products.
    """
    k = rows.shape[0]
    d = fitter.x[None, :] - rows[:, 0:1]
    d2w = (d * d) / (rows[:, 2:3] ** 2)
    # A pseudo-Voigt is linear in its Gaussian and Lorentzian parts: with both as columns the
    # screen fits each candidate's tail shape too, so a tail misfit does not pass for a peak.
    if fitter.shape == "lorentzian":
        profiles = 1.0 / (1.0 + 4.0 * d2w)
    elif fitter.shape == "pseudo_voigt":
        # Candidate-major columns (G_1, L_1, G_2, L_2, ...): a candidate's block stays
        # contiguous as others are dropped.
        profiles = np.empty((2 * k, fitter.n))
        np.exp(-FOUR_LN2 * d2w, out=profiles[0::2])
        profiles[1::2] = 1.0 / (1.0 + 4.0 * d2w)
    else:
        profiles = np.exp(-FOUR_LN2 * d2w)
    w = profiles.shape[0] // k  # columns per candidate
    base_cols = [fitter.model(0).basis]
    if fitter.n_edges:
        e = fitter.edge_rows
        base_cols.insert(0, edge_columns(fitter.x, e[:, 0], e[:, 2]))
    design = np.hstack([profiles.T, *base_cols])
    inv = spd_inverse(design.T @ design)
    if inv is None:
        return None
    coef = inv @ (design.T @ fitter.y)
    r = design @ coef - fitter.y
    rss = float(r @ r)
    alive = np.arange(k)
    signs = rows[:, 1]
    while alive.size:
        m = alive.size
        # Misfit of the rough starting shapes counts as noise here: a component that only
        # soaks up another peak's shape error is not a peak.
        s_eff = max(sigma, float(np.sqrt(rss / max(fitter.n - coef.size, 1))))
        diag = inv.diagonal()
        if w == 2:
            h = coef[0 : 2 * m : 2] + coef[1 : 2 * m : 2]
            var = diag[0 : 2 * m : 2] + diag[1 : 2 * m : 2] + 2.0 * inv.diagonal(1)[0 : 2 * m : 2]
        else:
            h, var = coef[:m], diag[:m]
        t = h * signs[alive] / (s_eff * np.sqrt(np.maximum(var, 1e-300)))
        a = int(np.argmin(t))
        if t[a] >= SCREEN_T and m <= max_peaks:
            break
        # Drop candidate a: Schur-complement downdate of the inverse and of the solution.
        b = slice(w * a, w * a + w)
        rest = np.delete(np.arange(coef.size), np.arange(w * a, w * a + w))
        sbb = inv[b, b]
        srb = inv[rest, b]
        if w == 2:
            det = sbb[0, 0] * sbb[1, 1] - sbb[0, 1] * sbb[1, 0]
            if not det > 0:
                return None
            sbb_inv = np.array([[sbb[1, 1], -sbb[0, 1]], [-sbb[1, 0], sbb[0, 0]]]) / det
        else:
            if not sbb[0, 0] > 0:
                return None
            sbb_inv = 1.0 / sbb
        wb = sbb_inv @ coef[b]
        rss += float(coef[b] @ wb)
        coef = coef[rest] - srb @ wb
        inv = inv[np.ix_(rest, rest)] - srb @ sbb_inv @ srb.T
        alive = np.delete(alive, a)
    if not alive.size:
        # Nothing passes while something large is left unmodelled (a misfit inflates s_eff):
        # start from the strongest candidate alone and let the fits decide.
        return rows[:1].copy()
    out = rows[alive].copy()
    if w == 2:
        # The Gaussian/Lorentzian split of each surviving height is its starting eta.
        m = alive.size
        g, lo = coef[0 : 2 * m : 2], coef[1 : 2 * m : 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = lo / (g + lo)
        out[:, 3] = np.where(np.isfinite(eta), np.clip(eta, 0.0, 1.0), ETA_START)
    return out


def _given_count(fitter: _Fitter, sigma: float, k: int, max_peaks: int, z_min: float) -> _Trial:
    """Exactly ``k`` peaks, the best of several routes by BIC; never a degenerate one.

    Route 1 is the free selection (the same screen, pruning and forward checks as
    ``n_peaks=None``, up to ``max(k, max_peaks)`` peaks) brought to ``k``: the weakest peaks
    refitted away, or the strongest residual candidates added. When the free fit already has
    ``k`` peaks it is the answer: the other routes start from a screen cut to ``k`` candidates
    and can only land in a basin the selection already ranked lower. Otherwise route 2 screens
    the candidates down to ``k`` at once and adds residual candidates while short, and route 3
    adds peaks one by one from the baseline.
    """
    if k == 0:
        return fitter.fit(_baseline_only(fitter))
    free = _select_with_edges(fitter, sigma, max(k, max_peaks), z_min)
    if free.model.n_peaks == k and np.isfinite(free.bic):
        return free
    trials = [_to_count(fitter, sigma, free, k, z_min)]
    first = _all_candidates(fitter, sigma, k, z_min)
    if first is not None and np.isfinite(first.bic):
        trials.append(_forward(fitter, sigma, k, z_min, k, trial=first))
    best = min(trials, key=lambda t: t.bic)
    if not np.isfinite(best.bic):
        best = _forward(fitter, sigma, k, z_min, k)
    return best


def _to_count(fitter: _Fitter, sigma: float, trial: _Trial, k: int, z_min: float) -> _Trial:
    """``trial`` with exactly ``k`` peaks: the least significant removed one at a time (each
    removal refitted), or residual candidates added."""
    while trial.model.n_peaks > k:
        z = _wald_z(trial, fitter.n)
        rows = np.delete(fitter.rows(trial), int(np.argmin(z)), axis=0)
        trial = _start(fitter, rows)
    if trial.model.n_peaks < k:
        trial = _forward(fitter, sigma, k, z_min, k, trial=trial)
    return trial


def _select_with_edges(fitter: _Fitter, sigma: float, max_peaks: int, z_min: float) -> _Trial:
    """Model selection, redone with end-of-window candidates when the ends look suspect.

    The end-of-window search costs about as much as the rest of a small fit, and most spectra
    have nothing at their ends; so the selection first runs without it, and only when its
    result has a peak close to an end (a truncated peak, or what the filter made of one) or a
    truncated feature left in the residual at an end, runs again with it. The lower BIC wins.
    (A misfit elsewhere is no reason: those spectra are the slow ones already.)
    """
    fitter.edge_search = False
    trial = _select(fitter, sigma, max_peaks, z_min)
    if not _ends_suspect(fitter, trial, sigma, z_min):
        return trial
    fitter.edge_search = True
    try:
        # Only the screened start and its checks: the slow fallbacks have run once already.
        alt = _select(fitter, sigma, max_peaks, z_min, fallback=False)
    finally:
        fitter.edge_search = False
    return alt if alt is not None and alt.bic < trial.bic else trial


EDGE_SUSPECT_FWHM = 1.0  # a peak this many FWHM from an end may be a truncated one
EDGE_ZONE_POINTS = 24  # points at each end whose residual is checked for a truncated peak


def _ends_suspect(fitter: _Fitter, trial: _Trial, sigma: float, z_min: float) -> bool:
    rows = fitter.rows(trial)
    if rows.size:
        gap = np.minimum(rows[:, 0] - fitter.x[0], fitter.x[-1] - rows[:, 0])
        if (gap < EDGE_SUSPECT_FWHM * rows[:, 2]).any():
            return True
    # A truncated peak worth finding (z >= 5) leaves at least ~25 sigma^2 of excess residual
    # within EDGE_ZONE_POINTS of its end; where neither end holds 3 standard deviations of
    # excess, the bank test is skipped (it costs a twentieth of a fit).
    m = min(EDGE_ZONE_POINTS, fitter.n // 4)
    r = trial.residual
    limit = m * sigma**2 * (1.0 + 3.0 * np.sqrt(2.0 / m))
    if float(r[:m] @ r[:m]) < limit and float(r[-m:] @ r[-m:]) < limit:
        return False
    fitter.edge_search = True
    try:
        return bool(_edge_candidates(fitter, -trial.residual, sigma, z_min))
    finally:
        fitter.edge_search = False


@overload
def _select(
    fitter: _Fitter, sigma: float, max_peaks: int, z_min: float, fallback: Literal[True] = True
) -> _Trial: ...
@overload
def _select(
    fitter: _Fitter, sigma: float, max_peaks: int, z_min: float, fallback: bool
) -> _Trial | None: ...
def _select(
    fitter: _Fitter, sigma: float, max_peaks: int, z_min: float, fallback: bool = True
) -> _Trial | None:
    """BIC model selection (see the module docstring); without ``fallback``, only the
    screened start and its backward/forward checks, None when the screen gives no start."""
    first = _all_candidates(fitter, sigma, max_peaks, z_min)
    if first is not None and np.isfinite(first.bic):
        trial = _prune(fitter, first)
        n0 = trial.model.n_peaks
        trial = _forward(fitter, sigma, max_peaks, z_min, None, trial=trial)
        if trial.model.n_peaks != n0:
            trial = _prune(fitter, trial)
        if not fallback or not _misfit(fitter, trial, sigma):
            return trial
    if not fallback:
        return None
    trial = _prune(fitter, _forward(fitter, sigma, max_peaks, z_min, None))
    if fitter.signed and _misfit(fitter, trial, sigma):
        for sign in (1.0, -1.0):
            alt = _prune(fitter, _one_sided(fitter, sigma, max_peaks, z_min, sign))
            if alt.bic < trial.bic:
                trial = alt
    return trial


def _finish(
    fitter: _Fitter,
    trial: _Trial,
    sigma: float,
    flags: list[str],
    cov: np.ndarray | None = None,
    ok: bool = True,
) -> PeakFit:
    """The reported fit; ``cov`` is the parameter covariance (default: from ``trial``)."""
    n = fitter.n
    model = trial.model
    if cov is None:
        cov, ok = _covariance(trial, n)
    if not ok:
        flags.append("ill_conditioned")
    if not trial.converged:
        flags.append("not_converged")
    err = np.sqrt(np.maximum(np.diag(cov), 0.0))
    pk, coefs = model.split(trial.params)
    s = model.stride
    lo, hi = fitter.bounds(model)
    peaks: list[Peak] = []
    for j in range(model.n_peaks):
        c, h, w = (float(v) for v in pk[j, :3])
        eta = float(pk[j, 3]) if s == 4 else (1.0 if fitter.shape == "lorentzian" else 0.0)
        area = peak_area(fitter.shape, h, w, eta)
        # Area error from the gradient of area wrt (h, w, eta) and their covariance.
        idx = [j * s + 1, j * s + 2] + ([j * s + 3] if s == 4 else [])
        grad = [area / h if h != 0 else peak_area(fitter.shape, 1.0, w, eta), area / w]
        if s == 4:
            grad.append(peak_area("lorentzian", h, w) - peak_area("gaussian", h, w))
        g = np.array(grad)
        area_err = float(np.sqrt(max(g @ cov[np.ix_(idx, idx)] @ g, 0.0)))
        pflags = []
        for off, name in ((0, "centre"), (2, "fwhm")):
            i = j * s + off
            if trial.params[i] <= lo[i] + 1e-9 * abs(lo[i]) or trial.params[i] >= hi[
                i
            ] - 1e-9 * abs(hi[i]):
                pflags.append(f"{name}_at_bound")
        peaks.append(
            Peak(
                centre_nm=c,
                height=h,
                fwhm_nm=w,
                area=area,
                eta=eta,
                centre_err=float(err[j * s]),
                height_err=float(err[j * s + 1]),
                fwhm_err=float(err[j * s + 2]),
                area_err=area_err,
                eta_err=float(err[j * s + 3]) if s == 4 else 0.0,
                flags=pflags,
            )
        )
    order = np.argsort([p.centre_nm for p in peaks])
    peaks = [peaks[i] for i in order]
    edges = []
    for j, (c, h, w) in enumerate(model.edges(trial.params)):
        i = model.n_peak_params + EDGE_STRIDE * j
        edges.append(
            Edge(
                centre_nm=float(c),
                height=float(h),
                width_nm=float(w),
                centre_err=float(err[i]),
                height_err=float(err[i + 1]),
                width_err=float(err[i + 2]),
            )
        )
    rss = trial.cost
    tss = float(np.sum((fitter.y - fitter.y.mean()) ** 2))
    dof = max(n - model.n_params, 1)
    red = (rss / dof) / sigma**2 if sigma**2 > 0 else float("inf")
    x0, x1 = float(fitter.x[0]), float(fitter.x[-1])
    for p in peaks:
        if min(p.centre_nm - x0, x1 - p.centre_nm) < EDGE_FWHM * p.fwhm_nm:
            p.flags.append("at_range_edge")
    if any(f in p.flags for p in peaks for f in ("centre_at_bound", "fwhm_at_bound")):
        flags.append("peak_at_bound")
    if any("at_range_edge" in p.flags for p in peaks):
        flags.append("at_range_edge")
    structure_z, structure_nm = 0.0, float("nan")
    if "flat" not in flags:
        # Judged against the noise, but never finer than a ten-thousandth of the signal's
        # range: noiseless synthetic data would otherwise call rounding-level misfit a misfit.
        judge = max(sigma, MISFIT_FLOOR * fitter.y_range)
        excess = (rss / dof) / judge**2 - 1.0
        structure_z, structure_nm = _residual_structure(fitter, trial.residual, judge)
        if excess > MISFIT_SIGMAS_FLAG * NOISE_RATIO_SD / np.sqrt(dof) or (
            structure_z >= STRUCTURE_Z
        ):
            flags.append("misfit")
    return PeakFit(
        shape=fitter.shape,
        peaks=peaks,
        baseline=[float(v) for v in coefs],
        baseline_order=fitter.order,
        scattering=fitter.scattering,
        signed=fitter.signed,
        r2=1.0 - rss / tss if tss > 0 else 1.0,
        rmse=float(np.sqrt(rss / n)),
        reduced_chi2=float(red),
        noise_sigma=float(sigma),
        aic=fitter.criterion(rss, model.n_params, 2.0),
        bic=trial.bic,
        n_points=n,
        n_iter=trial.n_iter,
        converged=trial.converged,
        flags=flags,
        wavelength_range_nm=(float(fitter.x[0]), float(fitter.x[-1])),
        params=trial.params,
        covariance=cov,
        start_params=trial.start,
        edges=sorted(edges, key=lambda e: e.centre_nm),
        residual_z=float(structure_z),
        residual_nm=float(structure_nm),
    )


# The misfit test. The residual variance over the second-difference noise estimate scatters,
# for a right model on white noise, with a standard deviation of about NOISE_RATIO_SD /
# sqrt(N) (measured: 2.43-2.57 for N = 256-2048; the MAD estimate of the noise is the larger
# share). A fit is flagged "misfit" when the excess is MISFIT_SIGMAS_FLAG of those above 1
# (reduced chi-square above 1.33 for 2048 points, 1.75 for 401), or when the residual holds a
# localised feature: a matched-filter z of STRUCTURE_Z or more anywhere, the ends included.
NOISE_RATIO_SD = 2.5
MISFIT_SIGMAS_FLAG = 6.0
STRUCTURE_Z = 6.5
STRUCTURE_SCALES = 4
STRUCTURE_POINTS = 256
MISFIT_FLOOR = 1e-4


def _residual_structure(fitter: _Fitter, residual: np.ndarray, sigma: float) -> tuple[float, float]:
    """Largest matched-filter z of a peak left in the residual, and where it is (nm).

    Spectra are scanned as bin averages of about STRUCTURE_POINTS points: a feature that
    matters is many samples wide, and the scan then costs a small share of a fit. Both the
    filter (interior) and the end-of-window bank (truncated features) look; ``residual`` is
    model - data.
    """
    x, r = fitter.x, -residual
    f = fitter.n // STRUCTURE_POINTS
    s = sigma
    if f >= 2:
        m = (fitter.n // f) * f
        x = x[:m].reshape(-1, f).mean(axis=1)
        r = r[:m].reshape(-1, f).mean(axis=1)
        s = sigma / np.sqrt(f)
    # Four kernel widths over the FWHM range (neighbours ~2.7x apart) keep at least ~3/4 of
    # the matched z for any width in between, at a third of the cost of the guesses' six.
    found = find_candidates(
        x,
        r,
        s,
        fitter.min_fwhm,
        fitter.max_fwhm,
        True,
        z_min=STRUCTURE_Z,
        n_scales=STRUCTURE_SCALES,
        limit=1,
    )
    # As in _ends_suspect: the end-of-window bank only where an end holds excess residual.
    m = min(EDGE_ZONE_POINTS, x.size // 4)
    limit = m * s**2 * (1.0 + 3.0 * np.sqrt(2.0 / m))
    if float(r[:m] @ r[:m]) < limit and float(r[-m:] @ r[-m:]) < limit:
        return _local_z(fitter, found, sigma)
    even = fitter.segments is None
    if even:
        q, proj2 = _plain_edge_basis(
            round(float(x[0]), 9), round(float(x[-1]), 9), x.size, fitter.span, 1, False,
            fitter.min_fwhm, fitter.max_fwhm,
        )  # fmt: skip
    else:
        q, proj2 = np.linalg.qr(PeakModel(x, 0, "gaussian", 1, False, fitter.span).basis)[0], None
    # The residual's own offset and slope are projected out.
    found += edge_candidates(
        x,
        r,
        s,
        q,
        fitter.min_fwhm,
        fitter.max_fwhm,
        True,
        z_min=STRUCTURE_Z,
        even=even,
        proj2=proj2,
    )
    return _local_z(fitter, found, sigma)


def _local_z(fitter: _Fitter, found: list[Candidate], sigma: float) -> tuple[float, float]:
    """The strongest of ``found`` whose z, against the noise around it, is STRUCTURE_Z or
    more, and where it is (nm); (0, NaN) if none."""
    best_z, best_nm = 0.0, float("nan")
    for c in found:
        # Shot noise grows with the signal: under a strong peak the noise can be several
        # times the spectrum-wide estimate, and a z against the latter would call that noise
        # structure. The z is rescaled to the noise of the data around the feature.
        near = np.abs(fitter.x - c.centre_nm) <= max(c.fwhm_nm, 16.0 * (fitter.x[1] - fitter.x[0]))
        local = noise_sigma(fitter.y[near]) if int(near.sum()) >= 16 else 0.0
        z = c.z * min(1.0, sigma / local) if local > 0 else c.z
        if z >= STRUCTURE_Z and z > best_z:
            best_z, best_nm = float(z), float(c.centre_nm)
    return best_z, best_nm


def fit_many(
    wavelength_nm: Sequence[float] | np.ndarray | Sequence[Sequence[float] | np.ndarray],
    values: np.ndarray | Sequence[Sequence[float] | np.ndarray],
    n_peaks: int | None = None,
    shape: str = "gaussian",
    baseline_order: int = 1,
    signed: bool = False,
    scattering: bool = False,
    max_peaks: int = 6,
    min_fwhm_nm: float = 5.0,
    max_fwhm_nm: float = 100.0,
    z_min: float = 5.0,
    max_iter: int = 200,
    edges: int = 0,
    on_error: str = "raise",
) -> list[PeakFit | SpectrumError]:
    """Fit many spectra with the same options (see :func:`fit_peaks`).

    Args:
        wavelength_nm: one shared grid (1-D) for a 2-D ``values`` (spectra x points), or one
            grid per spectrum (a list as long as ``values``).
        values: 2-D array or list of 1-D arrays.
        on_error: ``"raise"`` stops at the first bad spectrum (its index in ``where``);
            ``"return"`` puts the :class:`SpectrumError` in that spectrum's slot instead.
    """
    if on_error not in ("raise", "return"):
        raise SpectrumError(f"must be 'raise' or 'return', got {on_error!r}", where="on_error")
    ys = list(values)
    try:
        shared = np.asarray(wavelength_nm, dtype=np.float64)
    except (TypeError, ValueError):
        shared = None
    if shared is not None and shared.ndim == 1:
        grids: list[Any] = [shared] * len(ys)
    else:
        grids = list(wavelength_nm)  # type: ignore[arg-type]
        if len(grids) != len(ys):
            raise SpectrumError(
                f"{len(grids)} wavelength grids for {len(ys)} spectra",
                where="fit_many",
                reason="length_mismatch",
            )
    options: dict[str, Any] = {
        "n_peaks": n_peaks,
        "shape": shape,
        "baseline_order": baseline_order,
        "signed": signed,
        "scattering": scattering,
        "max_peaks": max_peaks,
        "min_fwhm_nm": min_fwhm_nm,
        "max_fwhm_nm": max_fwhm_nm,
        "z_min": z_min,
        "max_iter": max_iter,
        "edges": edges,
    }
    out: list[PeakFit | SpectrumError] = []
    with single_threaded():
        for i, (x, y) in enumerate(zip(grids, ys, strict=True)):
            try:
                out.append(fit_peaks(x, y, where=f"spectra[{i}]", **options))
            except SpectrumError as exc:
                if on_error == "raise":
                    raise
                out.append(exc)
    return out
