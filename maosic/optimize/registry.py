"""Registry: the reaction configuration's ``optimizer`` name -> optimizer class."""

from __future__ import annotations

from typing import Any

from maosic.optimize.base import Optimizer
from maosic.optimize.bayes import BayesOptimizer
from maosic.optimize.hybrid import HybridOptimizer
from maosic.optimize.simple import GridSearch, LatinHypercubeSearch, RandomSearch
from maosic.optimize.snobfit import SnobfitOptimizer

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "snobfit": SnobfitOptimizer,
    "random": RandomSearch,
    "grid": GridSearch,
    "lhs": LatinHypercubeSearch,
    "bayes": BayesOptimizer,
    "hybrid": HybridOptimizer,
}

# Chosen by scripts/bench_optimizers.py (20 seeds x 250, docs/optimizers.md): the hybrid (GP-EI
# with SNOBFIT's quadratic local steps and exploration once stalled) meets the goals;
# plain GP-EI misses the deceptive and 5-D goals.
DEFAULT_OPTIMIZER = "hybrid"


def optimizer_class(name: str) -> type[Optimizer]:
    """The class registered under ``name`` (case-insensitive); ValueError lists the choices."""
    key = str(name).strip().lower()
    if key in ("", "default", "auto"):
        key = DEFAULT_OPTIMIZER
    try:
        return OPTIMIZERS[key]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)} or 'default'"
        ) from None


def make_optimizer(name: str, space: Any, seed: int = 0, **hyperparameters: Any) -> Optimizer:
    """Build the optimizer ``name`` over ``space``; unknown hyperparameters raise ValueError."""
    cls = optimizer_class(name)
    try:
        return cls(space, seed=seed, **hyperparameters)
    except TypeError as exc:
        raise ValueError(
            f"optimizer {name!r}: bad hyperparameters {hyperparameters}: {exc}"
        ) from exc


def restore_optimizer(state: dict[str, Any]) -> Optimizer:
    """Rebuild any registered optimizer from its ``state()``."""
    return Optimizer.restore(state)
