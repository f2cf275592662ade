"""The project's GP-EI machinery that the default (``hybrid``) builds on: Latin-hypercube start,
then a Gaussian process with expected improvement over random and near-best grid candidates.

Until issue 22 this was the ``bayes`` optimizer. It is not a standard GP-EI (its predictive
spread includes the fitted noise and its smallest local step is 1 % of the range), so the
reference ``bayes`` is now :mod:`maosic.optimize.bayes`; this class stays as the hybrid's base so
that the default's measured behaviour does not move."""

from __future__ import annotations

from typing import Any

import numpy as np

from maosic.optimize.base import Key, Optimizer
from maosic.optimize.gp import (
    expected_improvement,
    fit_hyperparameters,
    fit_posterior,
    single_blas_thread,
)
from maosic.optimize.sampling import (
    LOCAL_PER_SCALE,
    LOCAL_SCALES,
    LOCAL_TOP,
    best_half_subset,
    latin_hypercube,
    random_free_indices,
)

# Local candidates are Gaussian perturbations of the best points at these scales (unit cube):
# from one-grid-step refinement to a neighbourhood wide enough to climb a broad hill.


class GPSearch(Optimizer):
    """GP-EI after a Latin-hypercube start (base of the hybrid; not registered).

    n_initial: size of the space-filling start; None means ``2 * d + 2``.
    xi: EI exploration margin, in units of the standardised loss (0.01 is customary).
    n_candidates: random free grid points scored per proposal (plus local candidates around the
        best points); bounds the cost of an ask at large histories.
    restarts: restarts of the kernel hyperparameter search.
    max_fit_points: hyperparameters are fitted on at most this many points (the best half and a
        random rest).
    max_model_points: the posterior uses at most this many points, chosen the same way; it
        bounds the cost of an ask (1000 points of history would otherwise take over 1 s).
    refit_growth: hyperparameters are refitted when the history has grown by this factor since the
        last fit (always while fewer than 20 points are known).
    explore_every: every k-th model-based proposal maximises the GP's standard deviation instead
        of EI (0 = never); a cheap guarantee against a model that is sure of the wrong hill.
    """

    name = "gpsearch"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        n_initial: int | None = None,
        xi: float = 0.01,
        n_candidates: int = 2000,
        restarts: int = 1,
        max_fit_points: int = 250,
        refit_growth: float = 1.1,
        explore_every: int = 0,
        max_model_points: int = 500,
    ) -> None:
        super().__init__(space, seed)
        if n_initial is not None and n_initial < 1:
            raise ValueError(f"{self.name}: n_initial must be >= 1, got {n_initial}")
        if xi < 0:
            raise ValueError(f"{self.name}: xi must be >= 0, got {xi}")
        if n_candidates < 1 or restarts < 0 or max_fit_points < 10 or refit_growth < 1.0:
            raise ValueError(
                f"{self.name}: need n_candidates >= 1, restarts >= 0, max_fit_points >= 10, "
                f"refit_growth >= 1 (got {n_candidates}, {restarts}, {max_fit_points}, "
                f"{refit_growth})"
            )
        if max_model_points < 10:
            raise ValueError(f"{self.name}: max_model_points must be >= 10, got {max_model_points}")
        if explore_every < 0:
            raise ValueError(f"{self.name}: explore_every must be >= 0, got {explore_every}")
        self.n_initial = None if n_initial is None else int(n_initial)
        self.xi = float(xi)
        self.n_candidates = int(n_candidates)
        self.restarts = int(restarts)
        self.max_fit_points = int(max_fit_points)
        self.refit_growth = float(refit_growth)
        self.explore_every = int(explore_every)
        self.max_model_points = int(max_model_points)
        self._design_position = 0
        self._theta: np.ndarray | None = None
        self._fit_size = 0
        self._model_steps = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "n_initial": self.n_initial,
            "xi": self.xi,
            "n_candidates": self.n_candidates,
            "restarts": self.restarts,
            "max_fit_points": self.max_fit_points,
            "refit_growth": self.refit_growth,
            "explore_every": self.explore_every,
            "max_model_points": self.max_model_points,
        }

    @property
    def initial_size(self) -> int:
        return self.n_initial if self.n_initial is not None else 2 * self.space.dim + 2

    # --- proposals --------------------------------------------------------------------------

    def _propose(self, n: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        if self._design_position == 0 and sum(v is not None for v in self._losses) >= max(
            2, self.initial_size
        ):
            # preloaded history already covers the space-filling start
            self._design_position = self.initial_size
        z_design = latin_hypercube(self.space.dim, self.initial_size, self.seed)
        design = self.space.index_of_unit(z_design)
        seen: set[Key] = set()
        while len(out) < n and self._design_position < len(design):
            key = tuple(int(v) for v in design[self._design_position])
            self._design_position += 1
            # preloaded history may already cover a design point: skip it rather than repeat it
            if self._is_free(key) and key not in seen:
                out.append(np.array(key))
                seen.add(key)
        if len(out) == n:
            return out
        z, y = self._observed()
        if len(y) < 2:
            return out  # the base class fills with space-filling points
        taken = self._taken() | {tuple(int(v) for v in k) for k in out}
        out.extend(self._model_proposals(n - len(out), z, y, taken))
        return out

    def _model_proposals(
        self, n: int, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> list[np.ndarray]:
        self._update_hyperparameters(z, y)
        assert self._theta is not None
        cand_keys = self._candidates(z, y, taken)
        if not cand_keys:
            return []
        z, y = best_half_subset(z, y, self.max_model_points, self._rng)
        cands = self.space.unit(np.array(cand_keys, dtype=float))
        out: list[np.ndarray] = []
        z_aug, y_aug = z, y
        liar = float(np.min(y))
        for _ in range(n):
            gp = fit_posterior(z_aug, y_aug, self._theta)
            with single_blas_thread():
                mu, sigma = gp.predict(cands, return_std=True)
            self._model_steps += 1
            pick = self._choose(mu, sigma, float(np.min(y)), cands, z_aug)
            out.append(np.array(cand_keys[pick]))
            # constant liar: pretend the chosen point returned the best loss, so the next point
            # of a batch goes elsewhere
            z_aug = np.vstack([z_aug, cands[pick]])
            y_aug = np.append(y_aug, liar)
            cands = np.delete(cands, pick, axis=0)
            del cand_keys[pick]
            if not cand_keys:
                break
        return out

    def _choose(
        self, mu: np.ndarray, sigma: np.ndarray, best: float, cands: np.ndarray, z: np.ndarray
    ) -> int:
        if self.explore_every and self._model_steps % self.explore_every == 0:
            return int(np.argmax(sigma))
        scale = float(np.std(self._observed()[1])) or 1.0
        return int(np.argmax(expected_improvement(mu, sigma, best, self.xi * scale)))

    def _update_hyperparameters(self, z: np.ndarray, y: np.ndarray) -> None:
        m = len(y)
        if self._theta is not None and m == self._fit_size:
            return
        if self._theta is not None and m >= 20 and m < self._fit_size * self.refit_growth:
            return
        zf, yf = best_half_subset(z, y, self._fit_points(m), self._rng)
        seed = int(self._rng.integers(0, 2**31 - 1))
        self._theta = fit_hyperparameters(
            zf, yf, self._fit_restarts(m), seed, self._theta, self._fit_max_iter(m)
        )
        self._fit_size = m

    def _fit_restarts(self, m: int) -> int:
        """Restarts of the hyperparameter search with ``m`` observations known."""
        return self.restarts

    def _fit_points(self, m: int) -> int:
        """At most this many observations enter the hyperparameter search at ``m`` known."""
        return self.max_fit_points

    def _fit_max_iter(self, m: int) -> int | None:
        """Iterations of each hyperparameter search with ``m`` observations (None: no limit)."""
        return None

    def _candidates(self, z: np.ndarray, y: np.ndarray, taken: set[Key]) -> list[Key]:
        keys: dict[Key, None] = {}
        for k in random_free_indices(self.space, self._rng, taken, self.n_candidates):
            keys[k] = None
        top = z[np.argsort(y, kind="stable")[:LOCAL_TOP]]
        for scale in LOCAL_SCALES:
            for centre in top:
                noise = self._rng.normal(0.0, scale, size=(LOCAL_PER_SCALE, self.space.dim))
                for row in self.space.index_of_unit(centre + noise):
                    key = tuple(int(v) for v in row)
                    if key not in taken:
                        keys[key] = None
        return list(keys)

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
        self._model_steps = int(extra["model_steps"])
