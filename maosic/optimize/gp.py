"""Gaussian-process surrogate (scikit-learn) and expected improvement, shared by the model-based
optimizers. Inputs are unit-cube coordinates; losses are standardised inside the GP."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import ThreadpoolController

# The GP's matrices are small (<= a few hundred rows for the hyperparameter search); BLAS thread
# start-up then costs more than it saves (measured 4.6x slower with 2 threads on 2 cores).
_BLAS_THREADS = 1
_controller: ThreadpoolController | None = None


def single_blas_thread() -> Any:
    """Context manager limiting BLAS to one thread (the controller is built once: ~10 ms)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=_BLAS_THREADS, user_api="blas")


def make_kernel(dim: int) -> ConstantKernel:
    """Matérn-5/2 with one length scale per dimension plus white noise (noisy lab data)."""
    return ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=np.full(dim, 0.2), length_scale_bounds=(1e-3, 1e1), nu=2.5
    ) + WhiteKernel(1e-3, (1e-8, 1e-1))


def fit_hyperparameters(
    z: np.ndarray,
    y: np.ndarray,
    restarts: int,
    seed: int,
    theta: np.ndarray | None,
    max_iter: int | None = None,
) -> np.ndarray:
    """Maximum-likelihood kernel hyperparameters (log scale) for data ``z`` (m, d), ``y`` (m,).

    theta: previous hyperparameters to start from (warm start), or None.
    max_iter: L-BFGS-B iterations per search (None: scikit-learn's default, 15000); a warm start
        needs few, and each costs a Cholesky factorisation of the m x m kernel matrix.
    """
    kernel = make_kernel(z.shape[1])
    if theta is not None:
        kernel = kernel.clone_with_theta(theta)
    optimizer: Any = "fmin_l_bfgs_b"
    if max_iter is not None:

        def optimizer(obj_func: Any, initial_theta: np.ndarray, bounds: np.ndarray) -> Any:
            res = minimize(
                obj_func,
                initial_theta,
                method="L-BFGS-B",
                jac=True,
                bounds=bounds,
                options={"maxiter": max_iter},
            )
            return res.x, res.fun

    gp = GaussianProcessRegressor(
        kernel=kernel,
        normalize_y=True,
        n_restarts_optimizer=restarts,
        random_state=seed,
        optimizer=optimizer,
    )
    with warnings.catch_warnings(), single_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(z, y)
    return np.asarray(gp.kernel_.theta, dtype=float)


def fit_posterior(z: np.ndarray, y: np.ndarray, theta: np.ndarray) -> GaussianProcessRegressor:
    """The GP posterior for fixed hyperparameters (one Cholesky factorisation, no search)."""
    kernel = make_kernel(z.shape[1]).clone_with_theta(theta)
    gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=None)
    with warnings.catch_warnings(), single_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(z, y)
    return gp


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float) -> np.ndarray:
    """EI for minimisation: E[max(best - xi - Y, 0)], Y ~ N(mu, sigma^2) (same units as y)."""
    sigma = np.maximum(sigma, 1e-12)
    gain = best - xi - mu
    u = gain / sigma
    return gain * norm.cdf(u) + sigma * norm.pdf(u)
