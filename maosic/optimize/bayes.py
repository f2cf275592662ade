"""Standard GP-EI, the reference a reviewer means by "Bayesian optimisation".

It follows scikit-optimize's ``gp_minimize`` defaults (its documentation): 10 initial points,
a Matérn-5/2 kernel with one length scale per dimension times a constant, plus Gaussian noise
fitted by maximum likelihood, losses standardised, 2 restarts of the hyperparameter search,
expected improvement with ``xi`` 0.01 computed on the *noise-free* posterior (the fitted noise
is left out of the predictive spread, so a measured point is not worth measuring again), and the
acquisition maximised by scoring many random points and polishing the best few with L-BFGS-B.
Differences, each for a reason: the start is a Latin hypercube (the fluidic labs' start, and
a better-spread 10 points than uniform draws); ``xi`` is in units of the losses' standard
deviation (scikit-optimize's is in the losses' own units, which makes it scale dependent);
candidates and L-BFGS-B optima are snapped to the resolution grid, the nearest free grid point
replacing a taken one, and candidates also include Gaussian steps of one grid step around the
best points, so the search refines on fine grids; hyperparameters are refitted at every tell up
to 20 points and then whenever the history grew by ``refit_growth`` (cost), on at most
``max_fit_points`` points.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from maosic.optimize.base import Key
from maosic.optimize.design_start import LatinHypercubeStart
from maosic.optimize.gp import expected_improvement, single_blas_thread
from maosic.optimize.sampling import (
    best_half_subset,
    local_and_random_candidates,
    nearest_free_index,
)

# Gaussian steps around the best points (unit cube), the first one grid step wide


def standard_kernel(dim: int) -> Any:
    """scikit-optimize's GP kernel on the unit cube: constant x Matérn-5/2 (ARD) + white noise."""
    return ConstantKernel(1.0, (0.01, 1000.0)) * Matern(
        length_scale=np.ones(dim), length_scale_bounds=(0.01, 100.0), nu=2.5
    ) + WhiteKernel(1.0, (1e-5, 1e5))


class _Posterior:
    """Noise-free GP posterior (the white-noise term left out at prediction) in loss units."""

    def __init__(self, gp: GaussianProcessRegressor) -> None:
        self.gp = gp
        self.signal = gp.kernel_.k1  # constant x Matérn; k2 is the fitted noise
        self.mean = float(np.ravel(gp._y_train_mean)[0])
        self.std = float(np.ravel(gp._y_train_std)[0])

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gp = self.gp
        with single_blas_thread():
            k_trans = self.signal(x, gp.X_train_)
            mu = k_trans @ np.ravel(gp.alpha_)
            v = solve_triangular(gp.L_, k_trans.T, lower=True, check_finite=False)
            var = self.signal.diag(x) - np.sum(v**2, axis=0)
        sd = np.sqrt(np.maximum(var, 0.0))
        return mu * self.std + self.mean, sd * self.std


class BayesOptimizer(LatinHypercubeStart):
    """Standard GP-EI (module docstring).

    n_initial: size of the Latin-hypercube start; None means 10 (scikit-optimize's default).
    xi: EI margin in units of the losses' standard deviation.
    n_candidates: random free grid points scored per proposal (plus steps around the best points).
    n_polish: the best candidates polished by L-BFGS-B on EI (scikit-optimize: 5).
    restarts: restarts of the hyperparameter search (scikit-optimize: 2).
    max_fit_points: hyperparameters are fitted on at most this many points (the best half and a
        seeded random rest).
    max_model_points: the posterior uses at most this many points, chosen the same way.
    refit_growth: hyperparameters are refitted when the history has grown by this factor since
        the last fit (always while fewer than 20 points are known); between refits the posterior
        is updated with the previous hyperparameters.
    explore_every: every k-th model-based proposal maximises the posterior's standard deviation
        instead of EI (0 = never, the standard method); kept so that options and checkpoints of
        the former ``bayes`` still load.
    """

    name = "bayes"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        n_initial: int | None = None,
        xi: float = 0.01,
        n_candidates: int = 2000,
        n_polish: int = 5,
        restarts: int = 2,
        max_fit_points: int = 250,
        max_model_points: int = 500,
        refit_growth: float = 1.1,
        explore_every: int = 0,
    ) -> None:
        super().__init__(space, seed)
        if n_initial is not None and n_initial < 1:
            raise ValueError(f"bayes: n_initial must be >= 1, got {n_initial}")
        if not xi >= 0:
            raise ValueError(f"bayes: xi must be >= 0, got {xi}")
        if n_candidates < 1 or n_polish < 0 or restarts < 0:
            raise ValueError(
                f"bayes: need n_candidates >= 1, n_polish >= 0, restarts >= 0 "
                f"(got {n_candidates}, {n_polish}, {restarts})"
            )
        if max_fit_points < 10 or max_model_points < 10 or not refit_growth >= 1.0:
            raise ValueError(
                f"bayes: need max_fit_points >= 10, max_model_points >= 10, refit_growth >= 1 "
                f"(got {max_fit_points}, {max_model_points}, {refit_growth})"
            )
        self.n_initial = None if n_initial is None else int(n_initial)
        self.xi = float(xi)
        self.n_candidates = int(n_candidates)
        self.n_polish = int(n_polish)
        self.restarts = int(restarts)
        self.max_fit_points = int(max_fit_points)
        self.max_model_points = int(max_model_points)
        self.refit_growth = float(refit_growth)
        if explore_every < 0:
            raise ValueError(f"bayes: explore_every must be >= 0, got {explore_every}")
        self.explore_every = int(explore_every)
        self._design_position = 0
        self._model_steps = 0
        self._theta: np.ndarray | None = None
        self._fit_size = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "n_initial": self.n_initial,
            "xi": self.xi,
            "n_candidates": self.n_candidates,
            "n_polish": self.n_polish,
            "restarts": self.restarts,
            "max_fit_points": self.max_fit_points,
            "max_model_points": self.max_model_points,
            "refit_growth": self.refit_growth,
            "explore_every": self.explore_every,
        }

    @property
    def initial_size(self) -> int:
        return self.n_initial if self.n_initial is not None else 10

    # --- proposals --------------------------------------------------------------------------

    def _model_proposals(
        self, n: int, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> list[np.ndarray]:
        self._update_hyperparameters(z, y)
        zm, ym = best_half_subset(z, y, self.max_model_points, self._rng)
        out: list[np.ndarray] = []
        taken = set(taken)
        liar = float(np.min(y))
        for _ in range(n):
            post = _Posterior(self._posterior_gp(zm, ym))
            self._model_steps += 1
            if self.explore_every and self._model_steps % self.explore_every == 0:
                key = self._max_spread(post, z, y, taken)
            else:
                key = self._maximise_ei(post, z, y, taken)
            if key is None:
                break
            out.append(np.array(key))
            taken.add(key)
            # constant liar: the next point of a batch goes elsewhere
            zm = np.vstack([zm, self.space.unit(np.array(key, dtype=float))])
            ym = np.append(ym, liar)
        return out

    def _maximise_ei(
        self, post: _Posterior, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> Key | None:
        keys = local_and_random_candidates(self.space, self._rng, z, y, taken, self.n_candidates)
        if not keys:
            return None
        best = float(np.min(y))
        xi = self.xi * (float(np.std(y)) or 1.0)
        cands = self.space.unit(np.array(keys, dtype=float))
        mu, sd = post.predict(cands)
        ei = expected_improvement(mu, sd, best, xi)
        scored = dict(zip(keys, ei, strict=True))
        # polish the best candidates in the continuous box, then back onto the grid
        for start in cands[np.argsort(-ei, kind="stable")[: self.n_polish]]:
            res = minimize(
                lambda x: -float(expected_improvement(*post.predict(x[None, :]), best, xi)[0]),
                start,
                method="L-BFGS-B",
                bounds=[(0.0, 1.0)] * self.space.dim,
                options={"maxiter": 30},
            )
            key = tuple(int(v) for v in self.space.index_of_unit(np.asarray(res.x)))
            if key in taken:
                key = nearest_free_index(self.space, key, taken)
            if key is not None and key not in scored:
                unit = self.space.unit(np.array([key], dtype=float))
                scored[key] = float(expected_improvement(*post.predict(unit), best, xi)[0])
        return max(scored, key=lambda k: scored[k])

    def _max_spread(
        self, post: _Posterior, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> Key | None:
        keys = local_and_random_candidates(self.space, self._rng, z, y, taken, self.n_candidates)
        if not keys:
            return None
        _, sd = post.predict(self.space.unit(np.array(keys, dtype=float)))
        return keys[int(np.argmax(sd))]

    def _posterior_gp(self, z: np.ndarray, y: np.ndarray) -> GaussianProcessRegressor:
        assert self._theta is not None
        gp = GaussianProcessRegressor(
            kernel=standard_kernel(self.space.dim).clone_with_theta(self._theta),
            normalize_y=True,
            optimizer=None,
        )
        with warnings.catch_warnings(), single_blas_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(z, y)
        return gp

    def _update_hyperparameters(self, z: np.ndarray, y: np.ndarray) -> None:
        m = len(y)
        if self._theta is not None and (
            m == self._fit_size or (m >= 20 and m < self._fit_size * self.refit_growth)
        ):
            return
        zf, yf = best_half_subset(z, y, self.max_fit_points, self._rng)
        kernel = standard_kernel(self.space.dim)
        gp = GaussianProcessRegressor(
            kernel=kernel,
            normalize_y=True,
            n_restarts_optimizer=self.restarts,
            random_state=int(self._rng.integers(0, 2**31 - 1)),
        )
        with warnings.catch_warnings(), single_blas_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(zf, yf)
        self._theta = np.asarray(gp.kernel_.theta, dtype=float)
        self._fit_size = m

    # --- state -----------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {
            "design_position": self._design_position,
            "theta": self._theta,
            "fit_size": self._fit_size,
            "model_steps": self._model_steps,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._design_position = int(extra["design_position"])
        self._theta = extra["theta"]
        self._fit_size = int(extra["fit_size"])
        self._model_steps = int(extra.get("model_steps", 0))
