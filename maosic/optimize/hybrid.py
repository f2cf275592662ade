"""The default optimizer: a global GP's view combined with SNOBFIT-style local steps.

After the Latin-hypercube start, each proposal follows a fixed ``schedule`` of step kinds:

* ``ei`` - expected improvement of the global GP over random and near-best grid candidates, then
  a finer search around the best-scoring candidates (``refine``);
* ``quad`` - SNOBFIT's local step: a full quadratic fitted by least squares to the nearest points
  of the best point, minimised inside a box reaching ``quad_box`` (0.5) times their median
  distance from it; it averages noise and follows ridges that are not along an axis (flow ratios
  of the 5-D PLQY problem);
* ``local`` - a small GP fitted to the best point's nearest neighbours only, maximising EI inside
  a box whose size follows the local sample spacing;
* ``alt`` - a local GP step around an *alternative* point: the measured point that beat the
  global model's leave-one-out prediction by the most standard deviations (a narrow optimum the
  smooth global model cannot represent shows up exactly like this); it climbs that point's own
  hill (the box reaches half way to the nearest other sample);
* ``explore`` - the candidate where the global GP is least certain, weighted by the distance to the
  nearest sample (SNOBFIT's "largest unexplored box"), the box's edge counting as a neighbour.

When the best loss has stopped improving (``stall_window`` experiments without progress) the
current hill is climbed, and the cycle switches to ``stalled_schedule`` (exploration and
alternative hills) until something better turns up. The GPs see clearly right-skewed losses
with their bad tail log-compressed (``warp``). Batches (``ask(n > 1)``) use a constant liar
so the points of one batch differ. The defaults were chosen with scripts/bench_optimizers.py
(docs/optimizers.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular

from maosic.optimize.base import Key
from maosic.optimize.gp import (
    expected_improvement,
    fit_hyperparameters,
    fit_posterior,
    single_blas_thread,
)
from maosic.optimize.gpsearch import GPSearch
from maosic.optimize.sampling import best_half_subset, min_distances

# Leave-one-out residuals need the diagonal of K^-1 (O(m^3)); beyond this many points the
# alternative centre is chosen among the most recent ones only, to keep an ask well under 1 s.
_LOO_MAX_POINTS = 400
_LOCAL_CANDIDATES = 400
# L-BFGS-B iterations of a warm-started hyperparameter fit past ``restart_until`` points
_WARM_FIT_ITERATIONS = 15
_WARM_FIT_POINTS = 100
# The quadratic step fits this many neighbours per coefficient (more points than coefficients, so
# least squares averages the measurement noise) with this ridge on the scaled features.
_QUAD_POINTS_PER_TERM = 1.5
_QUAD_RIDGE = 1e-3
# EI refinement: Gaussian steps (unit cube) around the best-scoring candidates
_REFINE_SCALES = (0.01, 0.03)
_REFINE_PER_POINT = 25
# Loss warping only for clearly right-skewed losses (a skewness above 1 is the usual mark of a
# highly skewed sample); uniform samples of Branin's losses have a median skewness of 0.8-1.2.
_WARP_MIN_SKEW = 1.0


@dataclass
class _Context:
    """What one proposal step may look at (global model, candidates, data incl. batch liars)."""

    z: np.ndarray
    y: np.ndarray
    y_raw: np.ndarray
    cands: np.ndarray
    cand_keys: list[Key]
    mu: np.ndarray
    sigma: np.ndarray
    gp: Any
    taken: set[Key]


class HybridOptimizer(GPSearch):
    """GP-EI + local models around the best and the most surprising points + exploration.

    schedule: comma-separated step kinds cycled after the start: ``ei``, ``quad``, ``local``,
        ``alt``, ``explore`` (see the module docstring).
    stalled_schedule: the kinds cycled instead while the search has stalled.
    stall_window, stall_tolerance: stalled = the last ``stall_window`` experiments (None means
        ``5 * d``: noisy higher-dimensional searches improve in rarer steps) improved the best
        loss by at most ``stall_tolerance`` times the range of observed losses.
    n_initial: size of the Latin-hypercube start; None means ``max(6, d + 3)`` (measured: 12
        points instead of 8 on the 5-D problem cost 15 experiments of median; 5 instead of 6 on
        the 2-D |CD| problem cost 1.5).
    local_points: neighbours in a local GP model; None means ``max(10, 4 * d)``.
    noisy_incumbent: EI improves on the GP mean's best at a measured point rather than on the
        best measured loss (robust to a lucky noisy draw).
    refine: EI is re-evaluated on Gaussian perturbations (unit-cube widths 0.01 and 0.03) of this
        many best-scoring candidates (0 = off).
    edge_weight: ``explore`` treats the box's edge as a sample at ``edge_weight`` times the
        distance to it (0 = plain maximin, which spends its first points on the boundary).
    warp: fit the GPs to :func:`warp_losses` of the losses (a long bad tail compressed when
        the losses are clearly right-skewed; Branin, 40 seeds: median 11 experiments instead of
        15.5; on the other benchmark problems it triggers at most late in a run). The
        quadratic step always uses the measured losses.
    quad_box: the quadratic step's box reaches this many times the fitted neighbours' median
        distance from its centre (per coordinate). A quadratic fitted over a wide neighbourhood
        is a poor guide at its edges; 0.5 instead of 1 (40 seeds): 5-D PLQY median 39 without a
        miss (was 40, tail up to 110 -> 87), Hartmann-6 40 (was 42).
    restarts: restarts of the global GP's hyperparameter search (3: the fit on a few points of a
        5-D landscape often stops in a poor optimum).
    restart_until: the restarts are made while at most this many points are known; later fits
        start from the previous hyperparameters only, for at most 15 iterations on at most 100
        points (the best half and a seeded random rest). This bounds the time of an ask under
        load (issue 22); runs that reach 95 % within that many experiments are unchanged by it.
    Other hyperparameters as in :class:`~maosic.optimize.gpsearch.GPSearch`.
    """

    name = "hybrid"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        n_initial: int | None = None,
        xi: float = 0.01,
        n_candidates: int = 2000,
        restarts: int = 3,
        max_fit_points: int = 250,
        refit_growth: float = 1.1,
        max_model_points: int = 500,
        schedule: str = "ei,quad",
        stalled_schedule: str = "explore,alt,ei",
        stall_window: int | None = None,
        stall_tolerance: float = 0.01,
        local_points: int | None = None,
        noisy_incumbent: bool = True,
        refine: int = 10,
        edge_weight: float = 2.0,
        warp: bool = True,
        quad_box: float = 0.5,
        restart_until: int = 60,
    ) -> None:
        super().__init__(
            space,
            seed,
            n_initial=n_initial,
            xi=xi,
            n_candidates=n_candidates,
            restarts=restarts,
            max_fit_points=max_fit_points,
            refit_growth=refit_growth,
            explore_every=0,
            max_model_points=max_model_points,
        )
        steps: dict[str, Callable[[_Context], int | Key | None]] = {
            "ei": self._step_ei,
            "local": self._step_local,
            "alt": self._step_alt,
            "explore": self._step_explore,
            "quad": self._step_quad,
        }
        if local_points is not None and local_points < 3:
            raise ValueError(f"hybrid: local_points must be >= 3, got {local_points}")
        if (stall_window is not None and stall_window < 1) or not stall_tolerance >= 0:
            raise ValueError(
                f"hybrid: need stall_window >= 1 and stall_tolerance >= 0 "
                f"(got {stall_window}, {stall_tolerance})"
            )
        self.schedule = _parse_schedule("schedule", schedule, steps)
        self.stalled_schedule = _parse_schedule("stalled_schedule", stalled_schedule, steps)
        self._steps = [steps[k] for k in self.schedule.split(",")]
        self._stalled_steps = [steps[k] for k in self.stalled_schedule.split(",")]
        self.stall_window = None if stall_window is None else int(stall_window)
        self.stall_tolerance = float(stall_tolerance)
        self.local_points = None if local_points is None else int(local_points)
        self.noisy_incumbent = bool(noisy_incumbent)
        if refine < 0:
            raise ValueError(f"hybrid: refine must be >= 0, got {refine}")
        self.refine = int(refine)
        if not edge_weight >= 0:
            raise ValueError(f"hybrid: edge_weight must be >= 0, got {edge_weight}")
        self.edge_weight = float(edge_weight)
        self.warp = bool(warp)
        if not quad_box > 0:
            raise ValueError(f"hybrid: quad_box must be > 0, got {quad_box}")
        self.quad_box = float(quad_box)
        if restart_until < 0:
            raise ValueError(f"hybrid: restart_until must be >= 0, got {restart_until}")
        self.restart_until = int(restart_until)

    def hyperparameters(self) -> dict[str, Any]:
        hp = super().hyperparameters()
        del hp["explore_every"]
        hp["schedule"] = self.schedule
        hp["stalled_schedule"] = self.stalled_schedule
        hp["stall_window"] = self.stall_window
        hp["stall_tolerance"] = self.stall_tolerance
        hp["local_points"] = self.local_points
        hp["noisy_incumbent"] = self.noisy_incumbent
        hp["refine"] = self.refine
        hp["edge_weight"] = self.edge_weight
        hp["warp"] = self.warp
        hp["quad_box"] = self.quad_box
        hp["restart_until"] = self.restart_until
        return hp

    @property
    def initial_size(self) -> int:
        return self.n_initial if self.n_initial is not None else max(6, self.space.dim + 3)

    @property
    def _k_local(self) -> int:
        return self.local_points if self.local_points is not None else max(10, 4 * self.space.dim)

    def _fit_restarts(self, m: int) -> int:
        # Past a few dozen points the previous hyperparameters are a good start and restarts
        # cost more than they find: with restarts up to 250 points a refitting ask took 3.8 s
        # at 230 points and 10 s for a preloaded history of 230 (Hartmann-6, load 5.7).
        return self.restarts if m <= self.restart_until else 0

    def _fit_max_iter(self, m: int) -> int | None:
        # the same reason: a warm-started search moves little, so few iterations suffice
        return None if m <= self.restart_until else _WARM_FIT_ITERATIONS

    def _fit_points(self, m: int) -> int:
        # each likelihood evaluation costs O(points^2 d) for the kernel's gradient: 250 points
        # in 6-D took 40 ms per evaluation at load 6 (a warm refit 2.5 s); 100 points 6x less
        if m <= self.restart_until:
            return self.max_fit_points
        return min(self.max_fit_points, _WARM_FIT_POINTS)

    # --- proposals --------------------------------------------------------------------------

    def _model_proposals(
        self, n: int, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> list[np.ndarray]:
        self._update_hyperparameters(z, self._model_losses(y))
        assert self._theta is not None
        cand_keys = self._candidates(z, y, taken)
        z, y = best_half_subset(z, y, self.max_model_points, self._rng)
        out: list[np.ndarray] = []
        z_aug, y_aug, raw_aug = z, self._model_losses(y), y
        liar, raw_liar = float(np.min(y_aug)), float(np.min(y))
        taken = set(taken)
        for _ in range(n):
            if not cand_keys:
                break
            cands = self.space.unit(np.array(cand_keys, dtype=float))
            gp = fit_posterior(z_aug, y_aug, self._theta)
            with single_blas_thread():
                mu, sigma = gp.predict(cands, return_std=True)
            ctx = _Context(z_aug, y_aug, raw_aug, cands, cand_keys, mu, sigma, gp, taken)
            plan = self._stalled_steps if self._stalled() else self._steps
            step = plan[self._model_steps % len(plan)]
            self._model_steps += 1
            picked = step(ctx)
            if picked is None:
                picked = self._step_ei(ctx)
            key = cand_keys[picked] if isinstance(picked, int) else picked
            out.append(np.array(key))
            taken.add(key)
            if isinstance(picked, int):
                del cand_keys[picked]
            else:
                cand_keys = [k for k in cand_keys if k != key]
            z_aug = np.vstack([z_aug, self.space.unit(np.array(key, dtype=float))])
            y_aug = np.append(y_aug, liar)
            raw_aug = np.append(raw_aug, raw_liar)
        return out

    def _model_losses(self, y: np.ndarray) -> np.ndarray:
        """The losses the GPs are fitted to: :func:`warp_losses` of ``y`` when ``warp`` is on."""
        return warp_losses(y) if self.warp else y

    def _stalled(self) -> bool:
        """True when the last ``stall_window`` results improved the best loss by less than
        ``stall_tolerance`` of the observed loss range: the current hill is climbed, so the
        schedule turns to exploring and to the alternative hills."""
        losses = [v for v in self._losses if v is not None]
        window = self.stall_window if self.stall_window is not None else 5 * self.space.dim
        if len(losses) <= window + self.initial_size:
            return False
        before = min(losses[:-window])
        now = min(losses)
        spread = max(losses) - now
        return before - now <= self.stall_tolerance * spread

    def _step_ei(self, ctx: _Context) -> int | Key:
        scale = float(np.std(ctx.y)) or 1.0
        best = self._incumbent(ctx)
        ei = expected_improvement(ctx.mu, ctx.sigma, best, self.xi * scale)
        pick = int(np.argmax(ei))
        if not self.refine:
            return pick
        # A second, finer search around the best candidates: in 5-6 dimensions a few thousand
        # random candidates leave EI's maximum far from any of them.
        top = ctx.cands[np.argsort(-ei, kind="stable")[: self.refine]]
        keys: dict[Key, None] = {}
        for width in _REFINE_SCALES:
            noise = self._rng.normal(0.0, width, size=(len(top), _REFINE_PER_POINT, self.space.dim))
            rows = self.space.index_of_unit((top[:, None, :] + noise).reshape(-1, self.space.dim))
            for row in rows:
                key = tuple(int(v) for v in row)
                if key not in ctx.taken:
                    keys[key] = None
        if not keys:
            return pick
        fine_keys = list(keys)
        fine = self.space.unit(np.array(fine_keys, dtype=float))
        with single_blas_thread():
            mu, sigma = ctx.gp.predict(fine, return_std=True)
        fine_ei = expected_improvement(mu, sigma, best, self.xi * scale)
        j = int(np.argmax(fine_ei))
        return fine_keys[j] if fine_ei[j] > ei[pick] else pick

    def _incumbent(self, ctx: _Context) -> float:
        """The loss to improve on: with noisy data the lowest *measured* loss is optimistic
        (a lucky draw), so the GP's lowest mean at a measured point is used instead."""
        if not self.noisy_incumbent:
            return float(np.min(ctx.y))
        with single_blas_thread():
            return float(np.min(ctx.gp.predict(ctx.z)))

    def _step_quad(self, ctx: _Context) -> Key | None:
        """SNOBFIT's local step: a full quadratic fitted by least squares to the nearest points
        of the best point (by GP mean, robust to a lucky noisy draw), minimised inside a box as
        wide as ``quad_box`` times their spacing. Least squares averages the noise and the
        quadratic's cross terms follow a ridge that is not along an axis (flow ratios), which an
        ARD kernel resolves only with many more points."""
        z, y = ctx.z, ctx.y_raw
        d = self.space.dim
        n_terms = (d + 1) * (d + 2) // 2
        if len(y) < n_terms + 2:
            return None
        with single_blas_thread():
            centre = z[int(np.argmin(ctx.gp.predict(z)))]
        dist = np.sqrt(((z - centre) ** 2).sum(axis=1))
        order = np.argsort(dist, kind="stable")[
            : max(n_terms + 2, int(_QUAD_POINTS_PER_TERM * n_terms))
        ]
        half = np.maximum(2.0 / self.space.steps, self.quad_box * float(np.median(dist[order[1:]])))
        lo = np.clip(centre - half, 0.0, 1.0)
        hi = np.clip(centre + half, 0.0, 1.0)
        raw = self._rng.uniform(lo, hi, size=(_LOCAL_CANDIDATES, d))
        keys = list(
            dict.fromkeys(
                k
                for k in (tuple(int(v) for v in row) for row in self.space.index_of_unit(raw))
                if k not in ctx.taken
            )
        )
        if not keys:
            return None
        scale = np.maximum(half, 1e-9)
        feats = _quadratic_features((z[order] - centre) / scale)
        yl = y[order]
        # a small ridge keeps the fit defined when the neighbours lie on a line (grid snapping)
        gram = feats.T @ feats + _QUAD_RIDGE * np.eye(feats.shape[1])
        coef = np.linalg.solve(gram, feats.T @ (yl - np.mean(yl)))
        cands = self.space.unit(np.array(keys, dtype=float))
        pred = _quadratic_features((cands - centre) / scale) @ coef
        return keys[int(np.argmin(pred))]

    def _step_explore(self, ctx: _Context) -> int:
        gap = min_distances(ctx.cands, ctx.z)
        if self.edge_weight > 0:
            # A sample covers a ball around it; on the box's edge half that ball lies outside,
            # so plain maximin spends its first points on the boundary. Count the edge as a
            # neighbour (deceptive problem, 40 seeds: median 58 experiments instead of 61.5).
            edge = np.minimum(ctx.cands, 1.0 - ctx.cands).min(axis=1)
            gap = np.minimum(gap, self.edge_weight * edge)
        return int(np.argmax(ctx.sigma * gap))

    def _step_local(self, ctx: _Context) -> Key | None:
        return self._local_around(ctx, int(np.argmin(ctx.y)))

    def _step_alt(self, ctx: _Context) -> Key | None:
        centre = self._most_surprising(ctx)
        if centre is None:
            return self._step_explore(ctx)  # type: ignore[return-value]
        return self._local_around(ctx, centre, own_basin=True)

    # --- local model ---------------------------------------------------------------------------

    def _local_around(self, ctx: _Context, centre: int, own_basin: bool = False) -> Key | None:
        """EI of a GP fitted to the ``k`` nearest points of ``centre``, inside a box as wide as
        the local sample spacing (at least two grid steps).

        own_basin: climb the centre's own hill: the box reaches only half way to the nearest
        other sample and EI must beat the centre's own loss. A lone surprising point far from
        the rest would otherwise get a box that spans the best hill too, and EI (measured on the
        deceptive problem) went back to that hill instead of climbing the new one.
        """
        z, y = ctx.z, ctx.y
        d = np.sqrt(((z - z[centre]) ** 2).sum(axis=1))
        order = np.argsort(d, kind="stable")[: self._k_local]
        if len(order) < 3:
            return None
        spacing = float(0.5 * d[order[1]]) if own_basin else float(np.median(d[order[1:]]))
        min_half = 2.0 / self.space.steps
        half = np.maximum(min_half, spacing)
        lo = np.clip(z[centre] - half, 0.0, 1.0)
        hi = np.clip(z[centre] + half, 0.0, 1.0)
        raw = self._rng.uniform(lo, hi, size=(_LOCAL_CANDIDATES, self.space.dim))
        keys = list(
            dict.fromkeys(
                tuple(int(v) for v in row)
                for row in self.space.index_of_unit(raw)
                if tuple(int(v) for v in row) not in ctx.taken
            )
        )
        if not keys:
            return None
        cands = self.space.unit(np.array(keys, dtype=float))
        seed = int(self._rng.integers(0, 2**31 - 1))
        zl, yl = z[order], y[order]
        # warm start from the global model: one short search, no restarts
        theta = fit_hyperparameters(zl, yl, 0, seed, self._theta)
        gp = fit_posterior(zl, yl, theta)
        with single_blas_thread():
            mu, sigma = gp.predict(cands, return_std=True)
        scale = float(np.std(yl)) or 1.0
        target = float(y[centre]) if own_basin else float(np.min(yl))
        ei = expected_improvement(mu, sigma, target, self.xi * scale)
        return keys[int(np.argmax(ei))]

    def _most_surprising(self, ctx: _Context) -> int | None:
        """Index of the point that beat its leave-one-out prediction by the most standard
        deviations, away from the best point (whose neighbourhood ``local`` already covers)."""
        z, y = ctx.z, ctx.y
        m = len(y)
        first = max(0, m - _LOO_MAX_POINTS)
        sub = np.arange(first, m)
        best = int(np.argmin(y))
        if first > 0:
            sub = np.union1d(sub, [best])
        gp = ctx.gp if first == 0 else fit_posterior(z[sub], y[sub], self._theta)
        with single_blas_thread():
            linv = solve_triangular(gp.L_, np.eye(len(sub)), lower=True)
        kinv_diag = np.sum(linv**2, axis=0)
        alpha = np.asarray(gp.alpha_).ravel()
        # y is standardised inside the GP: LOO residual r_i = alpha_i / Kinv_ii, sd 1/sqrt(Kinv_ii)
        surprise = (alpha / kinv_diag) * np.sqrt(kinv_diag)
        near_best = np.sqrt(((z[sub] - z[best]) ** 2).sum(axis=1)) < 0.1
        surprise = np.where(near_best, -np.inf, -surprise)  # positive = better than predicted
        j = int(np.argmax(surprise))
        if not np.isfinite(surprise[j]) or surprise[j] <= 1.0:
            return None
        return int(sub[j])


def warp_losses(y: np.ndarray) -> np.ndarray:
    """The losses with a long bad tail compressed, order kept: when the sample skewness of ``y``
    exceeds ``_WARP_MIN_SKEW``, a loss above the median ``m`` becomes ``m + s * log(1 + (y - m)
    / s)`` (``s`` the median absolute deviation); otherwise ``y`` is returned unchanged.

    A few very bad points (Branin's corners, ~300 times the optimum's loss) set a standardised
    GP's scale, so the differences near the optimum drown in it. Rewards bounded on the bad side
    (|CD|, PLQY, Hartmann-6, the deceptive bumps: losses skewed towards the *good* side) are left
    as measured: compressing their bad half unconditionally cost the 5-D PLQY problem 5
    experiments of median (40 seeds).
    """
    if len(y) < 3 or not _skewness(y) > _WARP_MIN_SKEW:
        return y
    m = float(np.median(y))
    s = float(np.median(np.abs(y - m))) or float(np.std(y))
    u = (y - m) / s
    return np.where(u > 0.0, m + s * np.log1p(np.maximum(u, 0.0)), y)


def _skewness(y: np.ndarray) -> float:
    """Sample skewness of ``y`` (0 when its spread is zero)."""
    sd = float(np.std(y))
    return float(np.mean(((y - np.mean(y)) / sd) ** 3)) if sd > 0 else 0.0


def _quadratic_features(x: np.ndarray) -> np.ndarray:
    """Columns 1, x_i and x_i x_j (i <= j) of a full quadratic in the rows of ``x`` (m, d)."""
    m, d = x.shape
    cols = [np.ones(m)] + [x[:, i] for i in range(d)]
    cols += [x[:, i] * x[:, j] for i in range(d) for j in range(i, d)]
    return np.column_stack(cols)


def _parse_schedule(label: str, text: str, steps: dict[str, Any]) -> str:
    kinds = [t.strip() for t in str(text).split(",") if t.strip()]
    bad = [k for k in kinds if k not in steps]
    if not kinds or bad:
        raise ValueError(
            f"hybrid: {label} {text!r} has unknown step kinds {bad}; "
            f"use a comma-separated list of {sorted(steps)}"
        )
    return ",".join(kinds)
