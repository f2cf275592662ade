"""Sum-of-peaks model on a low-order baseline, with its analytic Jacobian.

Parameter vector layout (one flat float64 array, so any least-squares solver can use it):

    [c_1, h_1, w_1, (eta_1), c_2, h_2, w_2, (eta_2), ..., b_0, ..., b_order, (s)]

* ``c`` centre (nm), ``h`` height (signal units, signed), ``w`` FWHM (nm),
  ``eta`` Lorentzian fraction of a pseudo-Voigt (0 = Gaussian, 1 = Lorentzian), only for
  ``shape="pseudo_voigt"``.
* ``b_k`` coefficients of the polynomial baseline in the reduced wavelength
  ``u = (x - x_mid) / x_half`` (u runs from -1 to 1 over the spectrum), which keeps the normal
  equations well conditioned whatever the wavelength range.
* ``s`` (only with ``scattering=True``) scales ``(x_min / x)**4``, the Rayleigh-like scattering
  background of a nanocrystal suspension; it is 1 at the shortest wavelength.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FOUR_LN2 = 4.0 * np.log(2.0)
GAUSS_AREA = float(np.sqrt(np.pi / FOUR_LN2))  # area of a unit-height Gaussian per nm of FWHM
LORENTZ_AREA = np.pi / 2.0  # area of a unit-height Lorentzian per nm of FWHM

SHAPES: dict[str, str] = {
    "gaussian": "exp(-4 ln2 (x-c)^2 / w^2)",
    "lorentzian": "1 / (1 + 4 (x-c)^2 / w^2)",
    "pseudo_voigt": "(1-eta) Gaussian + eta Lorentzian, same centre and FWHM, eta in [0, 1]",
}
_PEAK_WIDTH = {"gaussian": 3, "lorentzian": 3, "pseudo_voigt": 4}


def peak_stride(shape: str) -> int:
    """Number of parameters per peak for ``shape``."""
    return _PEAK_WIDTH[shape]


def peak_area(shape: str, height: float, fwhm: float, eta: float = 0.0) -> float:
    """Area (signal units x nm) of one peak."""
    if shape == "gaussian":
        return height * fwhm * GAUSS_AREA
    if shape == "lorentzian":
        return height * fwhm * LORENTZ_AREA
    return height * fwhm * ((1.0 - eta) * GAUSS_AREA + eta * LORENTZ_AREA)


@dataclass
class PeakModel:
    """Model of ``n_peaks`` peaks of one ``shape`` on a baseline, sampled at ``x`` (nm)."""

    x: np.ndarray
    n_peaks: int
    shape: str = "gaussian"
    baseline_order: int = 1
    scattering: bool = False
    span: tuple[float, float] | None = None
    basis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {sorted(SHAPES)}")
        self.stride = _PEAK_WIDTH[self.shape]
        self.basis = baseline_basis(self.x, self.baseline_order, self.scattering, self.span)
        self.n_peak_params = self.stride * self.n_peaks
        self.n_params = self.n_peak_params + self.basis.shape[1]

    def split(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(peaks (K x stride), baseline coefs)`` views of ``p``."""
        return p[: self.n_peak_params].reshape(self.n_peaks, self.stride), p[self.n_peak_params :]

    def baseline(self, p: np.ndarray) -> np.ndarray:
        return self.basis @ p[self.n_peak_params :]

    def profiles(self, p: np.ndarray) -> np.ndarray:
        """Unit-height profiles, one column per peak (N x K)."""
        pk, _ = self.split(p)
        d = self.x[:, None] - pk[:, 0]
        inv_w2 = 1.0 / (pk[:, 2] * pk[:, 2])
        d2w = d * d * inv_w2
        if self.shape == "gaussian":
            return np.exp(-FOUR_LN2 * d2w)
        lor = 1.0 / (1.0 + 4.0 * d2w)
        if self.shape == "lorentzian":
            return lor
        eta = pk[:, 3]
        return (1.0 - eta) * np.exp(-FOUR_LN2 * d2w) + eta * lor

    def evaluate(self, p: np.ndarray) -> np.ndarray:
        """Model values at ``x``."""
        pk, coefs = self.split(p)
        return self.profiles(p) @ pk[:, 1] + self.basis @ coefs

    def residual_jacobian(self, p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual ``model - y`` and its Jacobian (N x n_params), both analytic."""
        pk, coefs = self.split(p)
        c, h, w = pk[:, 0], pk[:, 1], pk[:, 2]
        d = self.x[:, None] - c
        inv_w2 = 1.0 / (w * w)
        d2w = d * d * inv_w2
        jac = np.empty((self.x.size, self.n_params))
        s = self.stride
        if self.shape == "lorentzian":
            prof = 1.0 / (1.0 + 4.0 * d2w)
            l2h = prof * prof * h
            dprof_dc = 8.0 * l2h * d * inv_w2
            dprof_dw = 8.0 * l2h * d2w / w
        else:
            gau = np.exp(-FOUR_LN2 * d2w)
            gh = gau * h
            g_dc = 2.0 * FOUR_LN2 * gh * d * inv_w2
            g_dw = 2.0 * FOUR_LN2 * gh * d2w / w
            if self.shape == "gaussian":
                prof, dprof_dc, dprof_dw = gau, g_dc, g_dw
            else:
                eta = pk[:, 3]
                lor = 1.0 / (1.0 + 4.0 * d2w)
                l2h = lor * lor * h
                prof = (1.0 - eta) * gau + eta * lor
                dprof_dc = (1.0 - eta) * g_dc + eta * 8.0 * l2h * d * inv_w2
                dprof_dw = (1.0 - eta) * g_dw + eta * 8.0 * l2h * d2w / w
                jac[:, 3 : self.n_peak_params : s] = (lor - gau) * h
        jac[:, 0 : self.n_peak_params : s] = dprof_dc
        jac[:, 1 : self.n_peak_params : s] = prof
        jac[:, 2 : self.n_peak_params : s] = dprof_dw
        jac[:, self.n_peak_params :] = self.basis
        resid = prof @ h + self.basis @ coefs - y
        return resid, jac


def baseline_basis(
    x: np.ndarray, order: int, scattering: bool, span: tuple[float, float] | None = None
) -> np.ndarray:
    """Columns of the baseline: ``u**0 .. u**order`` and optionally ``(x_min/x)**4``.

    ``span`` is the (first, last) wavelength that defines the reduced units; by default the
    ends of ``x``. Pass the fitted spectrum's span to evaluate a fit elsewhere.
    """
    lo, hi = (float(x[0]), float(x[-1])) if span is None else span
    half = 0.5 * (hi - lo) if hi > lo else 1.0
    u = (x - 0.5 * (hi + lo)) / half
    cols = [u**k for k in range(order + 1)]
    if scattering:
        cols.append((lo / x) ** 4 if lo > 0 else np.zeros_like(x))
    if not cols:
        return np.zeros((x.size, 0))
    return np.column_stack(cols)
