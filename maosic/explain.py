"""What drove a result: a surrogate fitted on a request's experiments, and what it says.

The self-driving fluidic lab papers trained a model on their campaign data and explained it with
SHAP (which inputs raise or lower the target) and surface plots of the top factors, reporting
the model's R² on a held-out split. :func:`explain` does the same for any finished request:

1. a Gaussian-process surrogate (scikit-learn; ARD Matérn 5/2 plus a noise term, inputs scaled
   to the search box, outputs standardised, strongly skewed rewards on a log scale) is scored on
   held-out experiments: R² of the out-of-fold predictions of a ``folds``-fold split (every
   experiment held out once; one 75/25 split, as the papers reported, swings by +-0.4 on 60
   points of a peaked landscape), then refitted on all of them;
2. SHAP values of the surrogate at every experiment (``shap``'s exact explainer over an
   independent background of the experiments; its permutation explainer above
   ``EXACT_MAX_FACTORS`` factors): each factor's importance is its mean |SHAP| and its direction
   the Spearman correlation between the factor's level and its SHAP value (+1: raising it raises
   the target);
3. the surrogate's response surface over the two most important factors, the others held at the
   best experiment's values;
4. a verdict on whether the data can carry an explanation at all. An optimizer's points cluster
   near its optimum, so the explanation of a steered campaign describes the neighbourhood of the
   optimum, not the space; the papers mapped the space first with a Latin hypercube. The data are
   "too clustered" when they are less spread than a uniform random design of the same size
   (centred L2 discrepancy above the 95th percentile of such designs) or a factor was explored
   over less than ``MIN_SPAN`` of its range; the explanation is a "poor fit" when the held-out
   R² is below ``MIN_R2``.

``y`` is the reward (larger is better), never the optimizer's loss. :func:`request_data` reads a
request's finished experiments from the database into the arrays :func:`explain` takes.
Everything is deterministic under ``seed``. Returns plain data (lists, floats) that JSON carries.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import qmc, spearmanr

MIN_EXPERIMENTS = 8  # below this no split leaves enough to fit and to score
MIN_R2 = 0.3  # held-out R² below this: the surrogate explains under a third of the variance
MIN_SPAN = 0.25  # a factor whose 10-90 % quantiles span less of its range was hardly varied
DISCREPANCY_DRAWS = 64  # uniform random designs that the data's discrepancy is compared with
EXACT_MAX_FACTORS = 10  # exact SHAP costs 2^d surrogate evaluations per point and background
BACKGROUND_SIZE = 50  # experiments in the SHAP background (all of them when fewer)


class ExplainError(ValueError):
    """The experiments cannot be explained (too few, bad shapes); the message says why."""


@dataclass
class Factor:
    """One input's part in the result."""

    name: str
    importance: float  # mean |SHAP| (units of the reward)
    direction: float  # Spearman(level, SHAP value): +1 raising it raises the reward
    spearman: float  # Spearman(level, reward) in the raw data, for comparison
    span: float  # 10-90 % quantile span of its levels as a share of its range


@dataclass
class Explanation:
    """The result of :func:`explain`; ``as_dict()`` is what a page or a CLI shows."""

    names: list[str]
    n: int
    method: str  # "shap-exact", "shap-permutation" or "permutation"
    r2_heldout: float  # R² of the out-of-fold predictions
    folds: int
    factors: list[Factor]  # most important first
    shap_values: list[list[float]]  # per experiment, per factor (names order)
    base_value: float
    surface: dict[str, Any]  # {"x_name", "y_name", "x", "y", "z" (rows follow y), "fixed"}
    discrepancy: float
    discrepancy_random_p95: float
    verdict: str  # "ok", "too clustered" or "poor fit"
    reasons: list[str] = field(default_factory=list)

    @property
    def trustworthy(self) -> bool:
        return self.verdict == "ok"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trustworthy"] = self.trustworthy
        return out


def _surrogate(seed: int, factors: int) -> Any:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    return GaussianProcessRegressor(
        kernel=ConstantKernel(1.0, (1e-2, 1e2))
        * Matern(length_scale=np.full(factors, 0.3), length_scale_bounds=(0.03, 30.0), nu=2.5)
        + WhiteKernel(0.1, (1e-6, 1.0)),
        normalize_y=True,
        n_restarts_optimizer=0,
        random_state=seed,
    )


SKEW_FOR_LOG = 1.0  # rewards more right-skewed than this are fitted on a log scale


class _Surrogate:
    """The GP, fitted on log(y - floor) when the rewards are strongly right-skewed (yields and
    PLQYs: a few high values over a flat floor, products of factors, which a log makes
    additive); ``predict`` answers in reward units either way."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        spread = float(np.std(y)) or 1.0
        centred = (y - y.mean()) / spread
        self.floor: float | None = None
        if float(np.mean(centred**3)) > SKEW_FOR_LOG:
            self.floor = float(y.min()) - 0.1 * spread
        target = y if self.floor is None else np.log(y - self.floor)
        self.gp = _surrogate(seed, x.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bound warnings of the kernel's hyperparameters
            self.gp.fit(x, target)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self.gp.predict(x)
        return z if self.floor is None else np.exp(z) + self.floor


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> _Surrogate:
    return _Surrogate(x, y, seed)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y - pred) ** 2)) / total


def _shap(model: Any, x: np.ndarray, seed: int) -> tuple[np.ndarray, float, str]:
    """SHAP values (n, d) of the model at x over a background of x, base value, method."""
    rng = np.random.default_rng(seed)
    size = min(BACKGROUND_SIZE, len(x))
    background = x[rng.choice(len(x), size=size, replace=False)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shap's own deprecation notices at import
            import shap
    except ImportError:  # the package is in requirements.txt; without it, say so in the method
        return _permutation(model, x, seed)
    masker = shap.maskers.Independent(background, max_samples=size)
    if x.shape[1] <= EXACT_MAX_FACTORS:
        explainer = shap.explainers.Exact(model.predict, masker)
        method = "shap-exact"
        values = explainer(x, silent=True)
    else:
        explainer = shap.explainers.Permutation(model.predict, masker, seed=seed)
        method = "shap-permutation"
        values = explainer(x, max_evals=2 * x.shape[1] + 1 + 10 * x.shape[1], silent=True)
    return np.asarray(values.values, dtype=float), float(np.mean(values.base_values)), method


def _permutation(model: Any, x: np.ndarray, seed: int) -> tuple[np.ndarray, float, str]:
    """Without ``shap``: per-point effects of shuffling one factor (a permutation importance
    split over the points), so importance and direction still read the same way."""
    rng = np.random.default_rng(seed)
    base = model.predict(x)
    values = np.zeros_like(x)
    for i in range(x.shape[1]):
        shuffled = x.copy()
        shuffled[:, i] = rng.permutation(shuffled[:, i])
        values[:, i] = base - model.predict(shuffled)
    return values, float(base.mean()), "permutation"


def _discrepancy(unit: np.ndarray, seed: int) -> tuple[float, float]:
    """Centred L2 discrepancy of the points and the 95th percentile of uniform random designs."""
    rng = np.random.default_rng(seed)
    observed = float(qmc.discrepancy(unit, method="CD"))
    draws = [
        float(qmc.discrepancy(rng.random(unit.shape), method="CD"))
        for _ in range(DISCREPANCY_DRAWS)
    ]
    return observed, float(np.percentile(draws, 95))


def explain(
    x: Sequence[Sequence[float]] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    names: Sequence[str],
    lower: Sequence[float],
    upper: Sequence[float],
    seed: int = 0,
    folds: int = 4,
    grid: int = 25,
) -> Explanation:
    """Explain the rewards ``y`` (larger is better) of experiments at ``x`` (n rows, one column
    per name) in the box [lower, upper]; see the module docstring."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    d = len(names)
    if xa.ndim != 2 or xa.shape[1] != d or ya.shape != (xa.shape[0],):
        raise ExplainError(
            f"x must be (n, {d}) and y (n,) for factors {list(names)}; "
            f"got x {xa.shape} and y {ya.shape}"
        )
    if lo.shape != (d,) or hi.shape != (d,) or not np.all(hi > lo):
        raise ExplainError("lower and upper must give one range per factor, upper > lower")
    keep = np.all(np.isfinite(xa), axis=1) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(ya)
    if n < MIN_EXPERIMENTS:
        raise ExplainError(
            f"{n} finished experiments with a reward; at least {MIN_EXPERIMENTS} are needed "
            "to fit a surrogate and score it on held-out experiments"
        )
    if not 2 <= folds <= n // 2:
        raise ExplainError(f"folds must be in [2, {n // 2}] for {n} experiments, got {folds}")
    unit = np.clip((xa - lo) / (hi - lo), 0.0, 1.0)

    order = np.random.default_rng(seed).permutation(n)
    out_of_fold = np.empty(n)
    for held_out in np.array_split(order, folds):
        train = np.setdiff1d(order, held_out)
        out_of_fold[held_out] = _fit(unit[train], ya[train], seed).predict(unit[held_out])
    r2 = _r2(ya, out_of_fold)

    model = _fit(unit, ya, seed)
    values, base_value, method = _shap(model, unit, seed)

    factors = []
    for i, name in enumerate(names):
        q10, q90 = np.percentile(unit[:, i], [10, 90])
        factors.append(
            Factor(
                name=str(name),
                importance=float(np.mean(np.abs(values[:, i]))),
                direction=_spearman(unit[:, i], values[:, i]),
                spearman=_spearman(unit[:, i], ya),
                span=float(q90 - q10),
            )
        )
    ranked = sorted(factors, key=lambda f: f.importance, reverse=True)

    best = unit[int(np.argmax(ya))]
    surface = _surface(model, ranked, list(names), best, lo, hi, grid)

    disc, disc_p95 = _discrepancy(unit, seed)
    reasons = []
    if disc > disc_p95:
        reasons.append(
            f"the experiments are less spread over the space than a random design of the same "
            f"size (centred L2 discrepancy {disc:.3g}, above the {disc_p95:.3g} that 95 % of "
            "random designs stay below): they describe the neighbourhood of the optimum"
        )
    for f in factors:
        if f.span < MIN_SPAN:
            reasons.append(
                f"{f.name} was varied over only {100 * f.span:.0f} % of its range "
                "(10-90 % of the experiments)"
            )
    verdict = "too clustered" if reasons else "ok"
    if not np.isfinite(r2) or r2 < MIN_R2:
        reasons.append(
            f"the surrogate predicts held-out experiments poorly (R² {r2:.2f} over {folds} "
            f"folds, below {MIN_R2})"
        )
        if verdict == "ok":
            verdict = "poor fit"
    return Explanation(
        names=[str(n) for n in names],
        n=n,
        method=method,
        r2_heldout=float(r2),
        folds=folds,
        factors=ranked,
        shap_values=values.tolist(),
        base_value=base_value,
        surface=surface,
        discrepancy=disc,
        discrepancy_random_p95=disc_p95,
        verdict=verdict,
        reasons=reasons,
    )


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0.0 or np.ptp(b) == 0.0:
        return 0.0
    return float(spearmanr(a, b)[0])


def _surface(
    model: Any,
    ranked: list[Factor],
    names: list[str],
    best: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    grid: int,
) -> dict[str, Any]:
    """The surrogate over the top two factors (the others at the best experiment's values)."""
    if len(names) < 2:
        i = 0
        u = np.linspace(0.0, 1.0, grid)
        pts = np.repeat(best[None, :], grid, axis=0)
        pts[:, i] = u
        return {
            "x_name": names[0],
            "y_name": None,
            "x": (lo[i] + u * (hi[i] - lo[i])).tolist(),
            "y": [],
            "z": [model.predict(pts).tolist()],
            "fixed": {},
        }
    i, j = names.index(ranked[0].name), names.index(ranked[1].name)
    u = np.linspace(0.0, 1.0, grid)
    gu, gv = np.meshgrid(u, u)  # rows follow the second factor
    pts = np.repeat(best[None, :], grid * grid, axis=0)
    pts[:, i] = gu.ravel()
    pts[:, j] = gv.ravel()
    z = model.predict(pts).reshape(grid, grid)
    fixed = {
        names[k]: float(lo[k] + best[k] * (hi[k] - lo[k]))
        for k in range(len(names))
        if k not in (i, j)
    }
    return {
        "x_name": names[i],
        "y_name": names[j],
        "x": (lo[i] + u * (hi[i] - lo[i])).tolist(),
        "y": (lo[j] + u * (hi[j] - lo[j])).tolist(),
        "z": z.tolist(),
        "fixed": fixed,
    }


def request_data(session: Any, request_id: int) -> dict[str, Any]:
    """A request's finished experiments as {"names", "lower", "upper", "x", "y"} for
    :func:`explain`: the configuration's varied parameters and bounds, the experiments that are
    done with a reward (replicates included: they are measurements too)."""
    from sqlalchemy import select

    from maosic.db.models import Experiment, ExperimentStatus, Request
    from maosic.language.config import load_config

    request = session.get(Request, request_id)
    if request is None:
        raise ExplainError(f"no request {request_id}")
    space = load_config(request.reaction.config).search_space()
    rows = session.scalars(
        select(Experiment)
        .where(Experiment.request_id == request_id)
        .where(Experiment.status == ExperimentStatus.DONE)
        .order_by(Experiment.number)
    ).all()
    x, y = [], []
    for row in rows:
        if row.reward is None or not all(name in row.params for name in space.names):
            continue
        x.append([float(row.params[name]) for name in space.names])
        y.append(float(row.reward))
    return {
        "names": list(space.names),
        "lower": space.lower.tolist(),
        "upper": space.upper.tolist(),
        "x": x,
        "y": y,
    }


def explain_request(session: Any, request_id: int, seed: int = 0) -> Explanation:
    """:func:`explain` on a request's finished experiments (:func:`request_data`)."""
    data = request_data(session, request_id)
    return explain(data["x"], data["y"], data["names"], data["lower"], data["upper"], seed=seed)
