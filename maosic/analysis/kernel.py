"""The fitter's inner loop compiled with numba: peak model, analytic Jacobian, bounded LM.

Why compiled: a spectrum's fit works on a few hundred points and 10-30 parameters, where every
numpy call costs a few microseconds of overhead whatever its size; the model, its Jacobian and
the Levenberg-Marquardt bookkeeping are dozens of such calls per iteration and were two thirds
of a spectrum's analysis time. Here one call runs the whole fit as plain loops.

The algorithm is the same as :func:`maosic.analysis.solver.levenberg_marquardt` driven by
:class:`maosic.analysis.model.PeakModel` (same parameter layout, stop tests, damping schedule
and bound handling), which stays the readable reference; tests check that both give the same
fit. The functions are compiled on first use and cached on disk (``cache=True``), so only the
first process after an install pays the compile time (a few seconds); ``nogil`` lets fits in
other threads (the web server, the core) run while one is in progress.
"""

from __future__ import annotations

import numpy as np
from numba import njit

FOUR_LN2 = 4.0 * np.log(2.0)
EDGE_CLIP = 60.0  # |x - c| / s beyond this is flat to double precision (as in model.py)
# exp(-a) for a above this is below 1e-304: taken as 0 without calling exp, whose underflow path
# (subnormal results, errno) costs ten times a normal call and is hit by most points of a
# narrow peak.
EXP_CUT = 700.0

# Shape codes (the compiled code takes an int, not a string).
GAUSSIAN, LORENTZIAN, PSEUDO_VOIGT = 0, 1, 2
SHAPE_CODES = {"gaussian": GAUSSIAN, "lorentzian": LORENTZIAN, "pseudo_voigt": PSEUDO_VOIGT}


@njit(cache=True, nogil=True)
def evaluate(
    x: np.ndarray,
    y: np.ndarray,
    basis_t: np.ndarray,
    p: np.ndarray,
    shape: int,
    n_peaks: int,
    n_edges: int,
    resid: np.ndarray,
    jt: np.ndarray,
    want_jac: bool,
) -> None:
    """Residual ``model - y`` into ``resid``; with ``want_jac`` the Jacobian into ``jt`` (P x N).

    The parameter layout is ``PeakModel``'s: peaks (centre, height, FWHM[, eta]), edges (centre,
    height, width), baseline coefficients of the rows of ``basis_t``.
    """
    n = x.size
    stride = 4 if shape == PSEUDO_VOIGT else 3
    npk = stride * n_peaks
    base = npk + 3 * n_edges
    n_base = basis_t.shape[0]
    for i in range(n):
        resid[i] = -y[i]
    for b in range(n_base):
        coef = p[base + b]
        for i in range(n):
            resid[i] += coef * basis_t[b, i]
        if want_jac:
            for i in range(n):
                jt[base + b, i] = basis_t[b, i]
    for k in range(n_peaks):
        o = k * stride
        c, h, w = p[o], p[o + 1], p[o + 2]
        eta = p[o + 3] if shape == PSEUDO_VOIGT else 0.0
        inv_w2 = 1.0 / (w * w)
        for i in range(n):
            d = x[i] - c
            t = d * inv_w2  # (x - c) / w^2
            d2w = d * t  # (x - c)^2 / w^2
            arg = FOUR_LN2 * d2w
            if shape == GAUSSIAN:
                prof = np.exp(-arg) if arg < EXP_CUT else 0.0
                bracket = prof * (2.0 * FOUR_LN2 * h)
            elif shape == LORENTZIAN:
                prof = 1.0 / (1.0 + 4.0 * d2w)
                bracket = prof * prof * (8.0 * h)
            else:
                gau = np.exp(-arg) if arg < EXP_CUT else 0.0
                lor = 1.0 / (1.0 + 4.0 * d2w)
                prof = (1.0 - eta) * gau + eta * lor
                bracket = gau * ((1.0 - eta) * 2.0 * FOUR_LN2 * h) + lor * lor * (8.0 * eta * h)
                if want_jac:
                    jt[o + 3, i] = h * (lor - gau)
            resid[i] += h * prof
            if want_jac:
                jt[o, i] = bracket * t
                jt[o + 1, i] = prof
                jt[o + 2, i] = bracket * d2w / w
    for m in range(n_edges):
        o = npk + 3 * m
        c, h, s = p[o], p[o + 1], p[o + 2]
        for i in range(n):
            v = (x[i] - c) / s
            v = min(max(v, -EDGE_CLIP), EDGE_CLIP)
            e = 1.0 / (1.0 + np.exp(v))
            resid[i] += h * e
            if want_jac:
                # d/dc = h E (1 - E) / s and d/ds = h E (1 - E) v / s
                g = e * (1.0 - e) * (h / s)
                jt[o, i] = g
                jt[o + 1, i] = e
                jt[o + 2, i] = g * v


@njit(cache=True, nogil=True)
def _cholesky(a: np.ndarray, m: int, lower: np.ndarray) -> bool:
    """Lower Cholesky factor of the leading m x m block of ``a`` into ``lower``; False if not PD."""
    for j in range(m):
        s = a[j, j]
        for q in range(j):
            s -= lower[j, q] * lower[j, q]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        lower[j, j] = d
        for i in range(j + 1, m):
            s = a[i, j]
            for q in range(j):
                s -= lower[i, q] * lower[j, q]
            lower[i, j] = s / d
    return True


@njit(cache=True, nogil=True)
def _cho_solve(lower: np.ndarray, m: int, b: np.ndarray, out: np.ndarray) -> None:
    """Solve ``L L^T out = b`` (first m entries)."""
    for i in range(m):
        s = b[i]
        for q in range(i):
            s -= lower[i, q] * out[q]
        out[i] = s / lower[i, i]
    for i in range(m - 1, -1, -1):
        s = out[i]
        for q in range(i + 1, m):
            s -= lower[q, i] * out[q]
        out[i] = s / lower[i, i]


@njit(cache=True, nogil=True)
def _within_sigmas(
    lower: np.ndarray, m: int, step: np.ndarray, noise_var: float, n_sigmas: float
) -> bool:
    """True when every |step| is at most ``n_sigmas`` one-sigma uncertainties.

    The variances are ``noise_var`` times the diagonal of the damped inverse ``(L L^T)^-1``,
    i.e. the squared column norms of ``L^-1``.
    """
    if noise_var <= 0.0 or n_sigmas <= 0.0:
        return False
    inv_l = np.zeros((m, m))
    for j in range(m):  # column j of L^-1 by forward substitution of e_j
        for i in range(j, m):
            s = 1.0 if i == j else 0.0
            for q in range(j, i):
                s -= lower[i, q] * inv_l[q, j]
            inv_l[i, j] = s / lower[i, i]
    limit = n_sigmas * n_sigmas * noise_var
    for j in range(m):
        var = 0.0
        for i in range(j, m):
            var += inv_l[i, j] * inv_l[i, j]
        if step[j] * step[j] > limit * var:
            return False
    return True


@njit(cache=True, nogil=True)
def fit(
    x: np.ndarray,
    y: np.ndarray,
    basis_t: np.ndarray,
    p0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    shape: int,
    n_peaks: int,
    n_edges: int,
    max_iter: int,
    rtol: float,
    atol: float,
    xtol: float,
    damping0: float,
    noise_var: float,
    step_sigmas: float,
    reuse_jacobian: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, bool]:
    """Bounded LM from ``p0``; returns (params, residual, Jacobian P x N, cost, iterations,
    converged). Arguments as in ``solver.levenberg_marquardt`` (trials evaluate the residual
    only; the Jacobian is computed at accepted points)."""
    n_par = p0.size
    n = x.size
    xk = np.minimum(np.maximum(p0, lower), upper)
    r = np.empty(n)
    jt = np.empty((n_par, n))
    evaluate(x, y, basis_t, xk, shape, n_peaks, n_edges, r, jt, True)
    cost = np.dot(r, r)
    r_new = np.empty(n)
    x_new = np.empty(n_par)
    free = np.empty(n_par, dtype=np.int64)
    a_free = np.empty((n_par, n_par))
    g_free = np.empty(n_par)
    diag = np.empty(n_par)
    chol = np.zeros((n_par, n_par))
    step = np.empty(n_par)
    lam = damping0
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        a = jt @ jt.T
        g = jt @ r
        # Parameters pinned on a bound with the gradient pushing outwards are held fixed for
        # this iteration; projecting a step computed as if they could move would stall LM.
        m = 0
        for i in range(n_par):
            pinned = (xk[i] <= lower[i] and g[i] > 0.0) or (xk[i] >= upper[i] and g[i] < 0.0)
            if not pinned:
                free[m] = i
                m += 1
        for i in range(m):
            g_free[i] = -g[free[i]]
            d = a[free[i], free[i]]
            diag[i] = d if d > 0.0 else 1.0
        improved = False
        while lam < 1e12:
            for i in range(m):
                for j in range(m):
                    a_free[i, j] = a[free[i], free[j]]
                a_free[i, i] += lam * diag[i]
            if not _cholesky(a_free, m, chol):
                lam *= 10.0
                continue
            _cho_solve(chol, m, g_free, step)
            x_new[:] = xk
            for i in range(m):
                x_new[free[i]] += step[i]
            for i in range(n_par):
                x_new[i] = min(max(x_new[i], lower[i]), upper[i])
            evaluate(x, y, basis_t, x_new, shape, n_peaks, n_edges, r_new, jt, False)
            cost_new = np.dot(r_new, r_new)
            if cost_new <= cost:
                small_step = True
                for i in range(n_par):
                    if abs(x_new[i] - xk[i]) > xtol * (abs(xk[i]) + xtol):
                        small_step = False
                        break
                small_gain = cost - cost_new <= max(rtol * cost, atol)
                done = (
                    small_step
                    or small_gain
                    or _within_sigmas(chol, m, step, noise_var, step_sigmas)
                )
                if not (done and reuse_jacobian):
                    evaluate(x, y, basis_t, x_new, shape, n_peaks, n_edges, r_new, jt, True)
                xk[:] = x_new
                r, r_new = r_new, r
                cost = cost_new
                # Halve the damping after a success (see solver.py).
                lam = max(lam * 0.5, 1e-12)
                improved = True
                converged = done
                break
            lam *= 5.0
        if not improved:
            # No damping makes progress: we are at a (possibly bound-constrained) minimum.
            converged = True
            break
        if converged:
            break
    return xk, r, jt, cost, n_iter, converged


@njit(cache=True, nogil=True)
def scale_space_peaks(
    score: np.ndarray,
    z: np.ndarray,
    sigmas: np.ndarray,
    wavelength: np.ndarray,
    step: float,
    z_min: float,
    limit: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One candidate per peak from a matched filter's scale-space response (guesses.py).

    ``score`` is ``|z| / sigma`` (scales x points). A candidate is a maximum of ``score`` over
    its 3 x 3 neighbourhood in position and scale (edges clamped), with ``|z| >= z_min`` and at
    least 1.5 kernel sigmas from either end. Taken in decreasing score, a maximum is dropped
    when a kept one of the same sign lies within half their summed sigmas (non-maximum
    suppression); the kept ones get parabolic refinement of centre and width. At most
    ``limit`` (<= 0: all). Returns centre (nm), FWHM (nm), sign and |z| arrays.
    """
    n_s, n = score.shape
    fwhm_per_sigma = 2.0 * np.sqrt(2.0 * np.log(2.0))
    found_s = np.empty(n_s * n, dtype=np.int64)
    found_p = np.empty(n_s * n, dtype=np.int64)
    found_v = np.empty(n_s * n)
    n_found = 0
    for s in range(n_s):
        edge = int(np.ceil(1.5 * sigmas[s] / step))
        for p in range(max(edge, 0), n - edge):
            v = score[s, p]
            if abs(z[s, p]) < z_min:
                continue
            is_max = True
            for ds in range(-1, 2):
                s2 = min(max(s + ds, 0), n_s - 1)
                for dp in range(-1, 2):
                    p2 = min(max(p + dp, 0), n - 1)
                    if score[s2, p2] > v:
                        is_max = False
            if is_max:
                found_s[n_found] = s
                found_p[n_found] = p
                found_v[n_found] = -v
                n_found += 1
    order = np.argsort(found_v[:n_found], kind="mergesort")
    ratio = sigmas[1] / sigmas[0] if n_s > 1 else 1.0
    centres = np.empty(n_found)
    fwhms = np.empty(n_found)
    signs = np.empty(n_found)
    zs = np.empty(n_found)
    sig_kept = np.empty(n_found)
    n_kept = 0
    for j in order:
        s, p = found_s[j], found_p[j]
        a = sigmas[s]
        sign = 1.0 if z[s, p] > 0 else -1.0
        centre = wavelength[p]
        suppressed = False
        for q in range(n_kept):
            if signs[q] == sign and abs(centres[q] - centre) < 0.5 * (sig_kept[q] + a):
                suppressed = True
                break
        if suppressed:
            continue
        zc = abs(z[s, p])
        if 0 < p < n - 1:  # parabolic refinement of the centre between samples
            y0, y1, y2 = abs(z[s, p - 1]), zc, abs(z[s, p + 1])
            den = y0 - 2.0 * y1 + y2
            if den < 0:
                centre += min(max(0.5 * (y0 - y2) / den, -0.5), 0.5) * step
        if 0 < s < n_s - 1:  # and of the width between (log-spaced) scales
            y0, y1, y2 = score[s - 1, p], score[s, p], score[s + 1, p]
            den = y0 - 2.0 * y1 + y2
            if den < 0:
                a *= ratio ** min(max(0.5 * (y0 - y2) / den, -0.5), 0.5)
        centres[n_kept] = centre
        sig_kept[n_kept] = a
        fwhms[n_kept] = a * fwhm_per_sigma
        signs[n_kept] = sign
        zs[n_kept] = zc
        n_kept += 1
        if 0 < limit <= n_kept:
            break
    return centres[:n_kept], fwhms[:n_kept], signs[:n_kept], zs[:n_kept]


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel; returns the seconds it took.

    The first fit after an install would otherwise pay the compile time (~8 s on a 2-core
    machine) inside an experiment; the set-up scripts call this once instead.
    """
    import time

    t0 = time.perf_counter()
    x = np.linspace(400.0, 500.0, 64)
    basis_t = np.ascontiguousarray(np.vstack([np.ones_like(x), (x - 450.0) / 50.0]))
    p = np.array([450.0, 1.0, 20.0, 0.3, 420.0, 0.5, 5.0, 0.0, 0.0])
    y = np.zeros_like(x)
    lo, hi = np.full(p.size, -np.inf), np.full(p.size, np.inf)
    fit(x, y, basis_t, p, lo, hi, PSEUDO_VOIGT, 1, 1, 5, 1e-6, 0.0, 1e-8, 1e-3, 1.0, 0.2, True)
    score = np.ones((3, x.size))
    scale_space_peaks(score, score, np.array([1.0, 2.0, 4.0]), x, 1.0, 5.0, 0)
    return time.perf_counter() - t0
