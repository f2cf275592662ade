"""A small bounded Levenberg-Marquardt solver for dense, well-determined problems.

Why not ``scipy.optimize.least_squares``: for a 2048-point spectrum with about a dozen parameters
its per-iteration overhead (SVD of the full Jacobian, trust-region bookkeeping in Python) costs
more than the model itself. Here each iteration forms the small normal matrix ``J^T J`` once
and solves a p x p system per damping trial, which is all such problems need. Bounds are kept by
projecting trial points onto the box (peaks rarely sit on a bound at the optimum; when one does,
the fit flags it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dposv

ResidualJacobian = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class SolverResult:
    x: np.ndarray
    residual: np.ndarray
    jacobian: np.ndarray
    cost: float  # sum of squared residuals
    n_iter: int
    converged: bool


def levenberg_marquardt(
    fun: ResidualJacobian,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    max_iter: int = 200,
    rtol: float = 1e-9,
    atol: float = 0.0,
    xtol: float = 1e-8,
    damping0: float = 1e-3,
) -> SolverResult:
    """Minimise ``sum(fun(x)[0]**2)`` subject to ``lower <= x <= upper``.

    Args:
        fun: returns the residual vector and its Jacobian at ``x``.
        x0: starting point (clipped into the box).
        lower, upper: bounds (use +-inf for none).
        max_iter: Jacobian evaluations allowed.
        rtol: stop when an accepted step lowers the cost by less than this fraction.
        atol: or by less than this absolute amount (e.g. a small fraction of sigma^2, below
            which no statistical decision can change).
        xtol: stop when the step is this small relative to ``|x|`` (elementwise, plus xtol).
        damping0: initial Marquardt damping, relative to ``diag(J^T J)``.
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), lower, upper)
    r, jac = fun(x)
    cost = float(r @ r)
    lam = damping0
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        a = jac.T @ jac
        g = jac.T @ r
        # Parameters pinned on a bound with the gradient pushing outwards are held fixed for
        # this iteration; projecting a step computed as if they could move would stall LM.
        pinned = ((x <= lower) & (g > 0.0)) | ((x >= upper) & (g < 0.0))
        free = np.flatnonzero(~pinned)
        if free.size < x.size:
            a = a[np.ix_(free, free)]
            g = g[free]
        diag = np.diag(a).copy()
        diag[diag <= 0.0] = 1.0
        improved = False
        while lam < 1e12:
            a_damped = a + np.diag(lam * diag)
            # Cholesky straight from LAPACK: the damped normal matrix is symmetric positive
            # definite, and numpy's generic solve costs 10x more in call overhead at this size.
            _, step_free, info = dposv(a_damped, -g)
            if info != 0:
                lam *= 10.0
                continue
            x_new = x.copy()
            x_new[free] += step_free
            np.clip(x_new, lower, upper, out=x_new)
            r_new, jac_new = fun(x_new)
            cost_new = float(r_new @ r_new)
            if cost_new <= cost:
                small_step = bool(np.all(np.abs(x_new - x) <= xtol * (np.abs(x) + xtol)))
                small_gain = cost - cost_new <= max(rtol * cost, atol)
                x, r, jac, cost = x_new, r_new, jac_new, cost_new
                lam = max(lam * 0.2, 1e-12)
                improved = True
                if small_step or small_gain:
                    converged = True
                break
            lam *= 5.0
        if not improved:
            # No damping makes progress: we are at a (possibly bound-constrained) minimum.
            converged = True
            break
        if converged:
            break
    return SolverResult(
        x=x, residual=r, jacobian=jac, cost=cost, n_iter=n_iter, converged=converged
    )
