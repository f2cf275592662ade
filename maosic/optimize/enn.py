"""Ensemble of neural networks (ENN) as the surrogate, as the self-driving fluidic labs ran it:
a Latin-hypercube start, then each proposal maximises one of the papers' decision policies over
the ensemble's mean and spread.

Policies (losses are minimised; ``mu`` and ``sigma`` are the ensemble's mean and standard
deviation at a candidate):

* ``mv`` - maximum variance: the candidate where the networks disagree most (exploration);
* ``ei`` - expected improvement over the best measured loss, ``sigma`` taken as Gaussian;
* ``ucb`` - upper confidence bound of the reward, i.e. the lowest ``mu - kappa * sigma``;
* ``eplt`` - pure exploitation: the lowest ``mu``.

The surrogate. Every member is a small fully connected network (two tanh hidden layers) fitted
to a bootstrap resample of the data from its own random start; the spread of the members'
predictions is the uncertainty. The networks are written out in numpy and trained together as
one stacked least-squares problem by L-BFGS (scipy): the members share no weights, so each
one's gradient is its own and the model is the same as members trained one by one (the joint run
differs only in its step sizes and stopping), but it costs one set of Python calls per iteration
instead of one per member. scikit-learn's ``MLPRegressor`` was
measured at 0.14 s per network at 250 points (two layers of 16, L-BFGS, 300 iterations, load
1.7), so an ensemble of 5-8 would take 0.7-1.1 s per ask before any load; the stacked ensemble
made a whole ask take 155 ms at 250 points of history (load 3.2, docs/optimizers.md). The
networks are retrained from a seeded start at every ask, so the optimizer's state is its history
and its random generator, as for
every optimizer here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import minimize

from maosic.optimize.base import Key
from maosic.optimize.design_start import LatinHypercubeStart
from maosic.optimize.gp import expected_improvement, single_blas_thread
from maosic.optimize.sampling import (
    best_half_subset,
    local_and_random_candidates,
    min_distances,
)

POLICIES = ("mv", "ei", "ucb", "eplt")
# Local candidates: Gaussian perturbations of the best points at these widths (unit cube), and at
# one grid step, so the search can both climb a hill and refine on a fine grid.


class EnsembleNN:
    """``members`` two-hidden-layer tanh networks trained together (see the module docstring).

    hidden: units per hidden layer; alpha: L2 penalty on the weights (per member, relative to the
    mean squared error); max_iter: L-BFGS iterations.
    """

    def __init__(self, members: int, hidden: int, alpha: float, max_iter: int) -> None:
        self.members = members
        self.hidden = hidden
        self.alpha = alpha
        self.max_iter = max_iter
        self._params: list[np.ndarray] | None = None
        self._y_mean = 0.0
        self._y_std = 1.0

    def _shapes(self, d: int) -> list[tuple[int, ...]]:
        k, h = self.members, self.hidden
        return [(k, d, h), (k, h), (k, h, h), (k, h), (k, h), (k,)]

    def _unpack(self, theta: np.ndarray, d: int) -> list[np.ndarray]:
        out, pos = [], 0
        for shape in self._shapes(d):
            size = int(np.prod(shape))
            out.append(theta[pos : pos + size].reshape(shape))
            pos += size
        return out

    @staticmethod
    def _forward(params: list[np.ndarray], x: np.ndarray) -> tuple[np.ndarray, ...]:
        w1, b1, w2, b2, w3, b3 = params
        a1 = _tanh(x @ w1 + b1[:, None, :])
        a2 = _tanh(a1 @ w2 + b2[:, None, :])
        f = (a2 @ w3[:, :, None])[:, :, 0] + b3[:, None]
        return a1, a2, f

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> EnsembleNN:
        """Fit to inputs ``x`` (m, d) in [0, 1] and losses ``y`` (m,); all randomness (bootstrap
        counts, initial weights) comes from ``rng``."""
        m, d = x.shape
        xs = 2.0 * x - 1.0  # tanh units work best on inputs centred on zero
        self._y_mean = float(np.mean(y))
        self._y_std = float(np.std(y)) or 1.0
        ys = (y - self._y_mean) / self._y_std
        # bootstrap as integer weights: every member sees its own resample of the same data
        counts = rng.multinomial(m, np.full(m, 1.0 / m), size=self.members).astype(float)
        # Glorot-like start: weights ~ N(0, 1/fan_in), biases zero
        fan_in = {0: d, 2: self.hidden, 4: self.hidden}
        init = [
            rng.normal(0.0, np.sqrt(1.0 / fan_in[i]), size=shape)
            if i in fan_in
            else np.zeros(shape)
            for i, shape in enumerate(self._shapes(d))
        ]
        theta0 = np.concatenate([p.ravel() for p in init])
        alpha = self.alpha

        def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            params = self._unpack(theta, d)
            w1, _, w2, _, w3, _ = params
            a1, a2, f = self._forward(params, xs)
            err = f - ys[None, :]
            r = counts * err / m
            loss = 0.5 * float(np.sum(r * err)) + 0.5 * alpha * float(
                np.sum(w1**2) + np.sum(w2**2) + np.sum(w3**2)
            )
            g_w3 = (r[:, None, :] @ a2)[:, 0, :] + alpha * w3
            g_b3 = r.sum(axis=1)
            d2 = r[:, :, None] * w3[:, None, :] * (1.0 - a2**2)
            g_w2 = a1.transpose(0, 2, 1) @ d2 + alpha * w2
            g_b2 = d2.sum(axis=1)
            d1 = (d2 @ w2.transpose(0, 2, 1)) * (1.0 - a1**2)
            g_w1 = xs.T @ d1 + alpha * w1
            g_b1 = d1.sum(axis=1)
            grad = np.concatenate([g.ravel() for g in (g_w1, g_b1, g_w2, g_b2, g_w3, g_b3)])
            return loss, grad

        with warnings.catch_warnings(), single_blas_thread():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(
                loss_and_grad,
                theta0,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.max_iter, "gtol": 1e-9, "ftol": 1e-12},
            )
        self._params = self._unpack(np.asarray(res.x, dtype=float), d)
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation of the loss at ``x`` (n, d) in [0, 1]."""
        assert self._params is not None, "fit first"
        with single_blas_thread():
            f = self._forward(self._params, 2.0 * x - 1.0)[2] * self._y_std + self._y_mean
        return f.mean(axis=0), f.std(axis=0)


class EnnOptimizer(LatinHypercubeStart):
    """Ensemble-of-neural-networks surrogate with the fluidic labs' decision policies.

    policy: comma-separated policies cycled over the model-based proposals, from ``mv``, ``ei``,
        ``ucb``, ``eplt`` (module docstring); e.g. ``"mv,ei"`` alternates exploration and EI.
    budget: the campaign's number of experiments, if known; the last ``final_steps`` of them then
        use ``final_policy`` (the second paper: EI, then exploitation for the last experiment).
        None: the schedule never switches.
    final_policy, final_steps: see ``budget``.
    n_initial: size of the Latin-hypercube start; None means ``max(6, d + 3)``. The papers
        started from 60 points in 5-D (``n_initial: 60``).
    members: networks in the ensemble.
    hidden: units in each of the two hidden layers.
    alpha: L2 weight penalty (relative to the mean squared error of standardised losses).
    max_iter: L-BFGS iterations per training.
    xi: EI margin in units of the losses' standard deviation.
    kappa: UCB's multiple of the ensemble's standard deviation.
    n_candidates: random free grid points scored per proposal, plus local candidates around the
        best points (down to one grid step).
    max_train_points: the ensemble is trained on at most this many points (the best half and a
        seeded random rest); it bounds the cost of an ask at long histories.
    """

    name = "enn"
    wants_budget = True  # "EI, then exploitation on the last experiment" needs to know the last

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        policy: str = "ei",
        budget: int | None = None,
        final_policy: str = "eplt",
        final_steps: int = 1,
        n_initial: int | None = None,
        members: int = 5,
        hidden: int = 16,
        alpha: float = 1e-3,
        max_iter: int = 150,
        xi: float = 0.01,
        kappa: float = 2.0,
        n_candidates: int = 2000,
        max_train_points: int = 300,
    ) -> None:
        super().__init__(space, seed)
        self.policy = _parse_policies("policy", policy)
        self.final_policy = _parse_policies("final_policy", final_policy)
        if "," in self.final_policy:
            raise ValueError(f"enn: final_policy must be one policy, got {final_policy!r}")
        if budget is not None and budget < 1:
            raise ValueError(f"enn: budget must be >= 1, got {budget}")
        if final_steps < 0:
            raise ValueError(f"enn: final_steps must be >= 0, got {final_steps}")
        if n_initial is not None and n_initial < 1:
            raise ValueError(f"enn: n_initial must be >= 1, got {n_initial}")
        if members < 2 or hidden < 1 or max_iter < 1:
            raise ValueError(
                f"enn: need members >= 2, hidden >= 1, max_iter >= 1 "
                f"(got {members}, {hidden}, {max_iter})"
            )
        if not alpha >= 0 or not xi >= 0 or not kappa >= 0:
            raise ValueError(f"enn: alpha, xi, kappa must be >= 0 (got {alpha}, {xi}, {kappa})")
        if n_candidates < 1 or max_train_points < 10:
            raise ValueError(
                f"enn: need n_candidates >= 1 and max_train_points >= 10 "
                f"(got {n_candidates}, {max_train_points})"
            )
        self.budget = None if budget is None else int(budget)
        self.final_steps = int(final_steps)
        self.n_initial = None if n_initial is None else int(n_initial)
        self.members = int(members)
        self.hidden = int(hidden)
        self.alpha = float(alpha)
        self.max_iter = int(max_iter)
        self.xi = float(xi)
        self.kappa = float(kappa)
        self.n_candidates = int(n_candidates)
        self.max_train_points = int(max_train_points)
        self._design_position = 0
        self._model_steps = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "budget": self.budget,
            "final_policy": self.final_policy,
            "final_steps": self.final_steps,
            "n_initial": self.n_initial,
            "members": self.members,
            "hidden": self.hidden,
            "alpha": self.alpha,
            "max_iter": self.max_iter,
            "xi": self.xi,
            "kappa": self.kappa,
            "n_candidates": self.n_candidates,
            "max_train_points": self.max_train_points,
        }

    @property
    def initial_size(self) -> int:
        return self.n_initial if self.n_initial is not None else max(6, self.space.dim + 3)

    def policy_for(self, experiment: int, model_step: int) -> str:
        """The policy of the ``experiment``-th experiment (0-based, counting every point told or
        asked) when it is the ``model_step``-th model-based proposal."""
        if self.budget is not None and experiment >= self.budget - self.final_steps:
            return self.final_policy
        cycle = self.policy.split(",")
        return cycle[model_step % len(cycle)]

    # --- proposals --------------------------------------------------------------------------

    def _model_proposals(
        self, n: int, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> list[np.ndarray]:
        zt, yt = best_half_subset(z, y, self.max_train_points, self._rng)
        net = EnsembleNN(self.members, self.hidden, self.alpha, self.max_iter)
        net.fit(zt, yt, self._rng)
        keys = local_and_random_candidates(self.space, self._rng, z, y, taken, self.n_candidates)
        if not keys:
            return []
        cands = self.space.unit(np.array(keys, dtype=float))
        mu, sigma = net.predict(cands)
        first = len(self._keys) + len(self._pending)
        # a batch's later points keep clear of its earlier ones by about half the typical
        # spacing of the data (the networks are not retrained within one ask)
        radius = 0.5 * len(y) ** (-1.0 / self.space.dim)
        picked: list[np.ndarray] = []
        blocked = np.zeros(len(keys), dtype=bool)
        for j in range(n):
            policy = self.policy_for(first + j, self._model_steps)
            self._model_steps += 1
            utility = np.where(blocked, -np.inf, self._utility(policy, mu, sigma, y))
            i = int(np.argmax(utility))
            if blocked[i]:
                break
            picked.append(np.array(keys[i]))
            blocked |= min_distances(cands, cands[i : i + 1]) < radius
            blocked[i] = True
        return picked

    def _utility(self, policy: str, mu: np.ndarray, sigma: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Higher is better, for each candidate under ``policy``."""
        if policy == "mv":
            return sigma.copy()
        if policy == "eplt":
            return -mu
        if policy == "ucb":
            return -(mu - self.kappa * np.maximum(sigma, 0.0))
        scale = float(np.std(y)) or 1.0
        return expected_improvement(mu, np.maximum(sigma, 0.0), float(np.min(y)), self.xi * scale)

    # --- state -----------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {"design_position": self._design_position, "model_steps": self._model_steps}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._design_position = int(extra["design_position"])
        self._model_steps = int(extra["model_steps"])


def _tanh(x: np.ndarray) -> np.ndarray:
    """tanh through exp: numpy's exp is vectorised, its tanh is not (measured 3x faster), and
    the training evaluates it twice per iteration on (members, points, hidden) arrays."""
    with np.errstate(over="ignore"):
        return 1.0 - 2.0 / (np.exp(2.0 * x) + 1.0)


def _parse_policies(label: str, text: str) -> str:
    names = [t.strip().lower() for t in str(text).split(",") if t.strip()]
    bad = [p for p in names if p not in POLICIES]
    if not names or bad:
        raise ValueError(
            f"enn: {label} {text!r} has unknown policies {bad}; "
            f"use a comma-separated list of {list(POLICIES)}"
        )
    return ",".join(names)
