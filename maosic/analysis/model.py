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

With ``n_edges > 0`` an edge block sits between the peaks and the baseline:
``[..., e_c_1, e_h_1, e_s_1, ..., e_c_M, e_h_M, e_s_M, b_0, ...]``. An edge is a broadened
absorption onset, ``e_h / (1 + exp((x - e_c) / e_s))``: ``e_h`` high to the blue of ``e_c`` and
falling to zero to the red over a few ``e_s`` (nm). It is the interband continuum of a
semiconductor nanocrystal (Elliott's picture: discrete exciton peaks plus a continuum step),
which Gaussians can only imitate with several broad peaks.
"""

from __future__ import annotations

import copy
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
EDGE_STRIDE = 3  # parameters per absorption edge: centre, height, width
EDGE_CLIP = 60.0  # |x - c| / s beyond this is flat to double precision


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
    n_edges: int = 0
    basis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {sorted(SHAPES)}")
        self.stride = _PEAK_WIDTH[self.shape]
        self.basis = baseline_basis(self.x, self.baseline_order, self.scattering, self.span)
        self.basis_t = np.ascontiguousarray(self.basis.T)
        self._pending: tuple | None = None  # see residual()
        self.n_peak_params = self.stride * self.n_peaks
        self.base_start = self.n_peak_params + EDGE_STRIDE * self.n_edges
        self.n_params = self.base_start + self.basis.shape[1]

    def with_peaks(self, n_peaks: int) -> PeakModel:
        """The same model with ``n_peaks`` peaks, sharing this one's baseline basis (building
        the basis is a measurable share of a small fit, and selection needs several K)."""
        other = copy.copy(self)
        other.n_peaks = n_peaks
        other._pending = None
        other.n_peak_params = self.stride * n_peaks
        other.base_start = other.n_peak_params + EDGE_STRIDE * self.n_edges
        other.n_params = other.base_start + self.basis.shape[1]
        return other

    def split(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(peaks (K x stride), baseline coefs)`` views of ``p``."""
        return p[: self.n_peak_params].reshape(self.n_peaks, self.stride), p[self.base_start :]

    def edges(self, p: np.ndarray) -> np.ndarray:
        """Edge rows ``(centre, height, width)`` (M x 3 view of ``p``)."""
        return p[self.n_peak_params : self.base_start].reshape(self.n_edges, EDGE_STRIDE)

    def baseline(self, p: np.ndarray) -> np.ndarray:
        return self.basis @ p[self.base_start :]

    def edge_profiles(self, p: np.ndarray) -> np.ndarray:
        """Unit-height edges, one column per edge (N x M)."""
        e = self.edges(p)
        return edge_columns(self.x, e[:, 0], e[:, 2])

    def profiles(self, p: np.ndarray) -> np.ndarray:
        """Unit-height profiles, one column per peak (N x K; a transposed K x N array)."""
        pk, _ = self.split(p)
        d = np.subtract(self.x, pk[:, 0:1])  # peaks x points: long inner loops
        d2w = d * d
        d2w *= 1.0 / (pk[:, 2:3] * pk[:, 2:3])
        if self.shape == "lorentzian":
            return (1.0 / (1.0 + 4.0 * d2w)).T
        gau = np.exp(d2w * -FOUR_LN2)
        if self.shape == "gaussian":
            return gau.T
        eta = pk[:, 3:4]
        return ((1.0 - eta) * gau + eta / (1.0 + 4.0 * d2w)).T

    def evaluate(self, p: np.ndarray) -> np.ndarray:
        """Model values at ``x``."""
        pk, coefs = self.split(p)
        out = self.profiles(p) @ pk[:, 1] + self.basis @ coefs
        if self.n_edges:
            out += self.edge_profiles(p) @ self.edges(p)[:, 1]
        return out

    def residual(self, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Residual ``model - y`` only.

        A Levenberg-Marquardt trial needs just this, and about half the trials are rejected;
        the intermediates are kept so that :meth:`residual_jacobian` at the same ``p`` and
        ``y`` (the trial was accepted) only adds the derivative rows.
        """
        resid, state = self._values(p, y)
        self._pending = (p.copy(), y, resid, state)
        return resid

    def residual_jacobian(self, p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual ``model - y`` and its Jacobian (N x n_params), both analytic.

        This is the fitter's inner loop (about a hundred calls per spectrum on a few hundred
        points), where numpy's per-call overhead rivals the arithmetic. The work is laid out
        peaks x points, so every ufunc runs a long contiguous inner loop (points x peaks would
        loop over 3-6 peaks innermost, several times slower), and each K x N product is
        computed once and written straight into its Jacobian row (``out=``). The Jacobian is
        returned as the transpose view of a (n_params x N) array.
        """
        pending = self._pending
        self._pending = None
        if pending is not None and pending[1] is y and np.array_equal(pending[0], p):
            resid, state = pending[2], pending[3]
        else:
            resid, state = self._values(p, y)
        return resid, self._derivatives(p, state)

    def _values(self, p: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Residual, with the profile rows of the Jacobian filled and the shared products."""
        npk, s = self.n_peak_params, self.stride
        pk = p[:npk].reshape(self.n_peaks, s)
        c, w = pk[:, 0:1], pk[:, 2:3]  # K x 1 columns broadcast over points
        jt = np.empty((self.n_params, self.x.size))
        jp = jt[1:npk:s]
        d = np.subtract(self.x, c)
        inv_w = 1.0 / w
        t = d * (inv_w * inv_w)  # (x - c) / w^2
        d2w = d * t  # (x - c)^2 / w^2
        gau = lor = None
        if self.shape == "lorentzian":
            np.multiply(d2w, 4.0, out=jp)
            jp += 1.0
            np.reciprocal(jp, out=jp)
        elif self.shape == "gaussian":
            np.multiply(d2w, -FOUR_LN2, out=jp)
            np.exp(jp, out=jp)
        else:
            eta = pk[:, 3:4]
            gau = np.exp(d2w * -FOUR_LN2)
            lor = 1.0 + 4.0 * d2w
            np.reciprocal(lor, out=lor)
            np.multiply(gau, 1.0 - eta, out=jp)
            jp += lor * eta
        base = self.base_start
        jt[base:] = self.basis_t
        resid = pk[:, 1] @ jp
        resid += p[base:] @ jt[base:]
        edge_state = None
        if self.n_edges:
            e = p[npk:base].reshape(self.n_edges, EDGE_STRIDE)
            je = jt[npk + 1 : base : EDGE_STRIDE]
            v = np.subtract(self.x, e[:, 0:1])
            v /= e[:, 2:3]
            np.clip(v, -EDGE_CLIP, EDGE_CLIP, out=v)  # exp stays finite; the tails are flat
            np.exp(v, out=je)
            je += 1.0
            np.reciprocal(je, out=je)
            resid += e[:, 1] @ je
            edge_state = v
        resid -= y
        return resid, (jt, t, d2w, inv_w, gau, lor, edge_state)

    def _derivatives(self, p: np.ndarray, state: tuple) -> np.ndarray:
        """Fill the centre, FWHM (and eta) rows; return the Jacobian (N x n_params view)."""
        jt, t, d2w, inv_w, gau, lor, edge_state = state
        npk, s = self.n_peak_params, self.stride
        if self.n_edges:
            base = self.base_start
            e = p[npk:base].reshape(self.n_edges, EDGE_STRIDE)
            unit = jt[npk + 1 : base : EDGE_STRIDE]
            # d/dc = h E (1 - E) / s and d/ds = h E (1 - E) v / s, with v = (x - c) / s.
            g = unit * (1.0 - unit)
            g *= e[:, 1:2] / e[:, 2:3]
            jt[npk:base:EDGE_STRIDE] = g
            np.multiply(g, edge_state, out=jt[npk + 2 : base : EDGE_STRIDE])
        pk = p[:npk].reshape(self.n_peaks, s)
        h = pk[:, 1:2]
        jc = jt[0:npk:s]
        jp = jt[1:npk:s]
        jw = jt[2:npk:s]
        if self.shape == "lorentzian":
            bracket = jp * jp
            bracket *= 8.0 * h
        elif self.shape == "gaussian":
            bracket = jp * (2.0 * FOUR_LN2 * h)
        else:
            eta = pk[:, 3:4]
            # d(profile)/dc = [(1-eta) 2 F gau + eta 8 lor^2] h (x-c)/w^2; same bracket for w.
            bracket = gau * ((1.0 - eta) * 2.0 * FOUR_LN2 * h)
            bracket += (lor * lor) * (8.0 * eta * h)
            je = jt[3:npk:s]
            np.subtract(lor, gau, out=je)
            je *= h
        np.multiply(bracket, t, out=jc)
        np.multiply(bracket, d2w, out=jw)
        jw *= inv_w
        return jt.T


def edge_columns(x: np.ndarray, centres: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Unit-height absorption edges ``1 / (1 + exp((x - c) / s))`` at ``x`` (N x len(centres))."""
    v = (np.asarray(x, dtype=float)[:, None] - np.asarray(centres)[None, :]) / np.asarray(widths)
    return 1.0 / (1.0 + np.exp(np.clip(v, -EDGE_CLIP, EDGE_CLIP)))


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
