"""Registry: the reaction configuration's ``optimizer`` name -> optimizer class."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping
from typing import Any

from maosic.optimize.base import Optimizer
from maosic.optimize.bayes import BayesOptimizer
from maosic.optimize.enn import EnnOptimizer
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
    "enn": EnnOptimizer,
}

# Chosen by scripts/bench_optimizers.py (docs/optimizers.md): the hybrid (GP-EI with SNOBFIT's
# quadratic local steps and exploration once stalled) is the best or near the best on every
# benchmark problem; "snobfit" and "bayes" are the faithful references it is compared with.
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


# Constructor arguments that are not options: the campaign supplies the space and the seed.
_NOT_OPTIONS = frozenset({"self", "space", "seed"})
# How an option's type is named in a refusal (the configuration is JSON: true/false, numbers).
_TYPE_WORDS: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
}


def optimizer_options(name: str) -> list[str]:
    """The options optimizer ``name`` takes (its constructor's keywords), in signature order."""
    return list(_option_types(optimizer_class(name)))


def check_options(name: str, options: Mapping[str, Any], space: Any | None = None) -> None:
    """Refuse (ValueError) options optimizer ``name`` would not run with: one it does not take
    (the message lists those it does), a value of the wrong type, and, given the search space,
    a value its constructor refuses (with the optimizer's own message, e.g. ``design_size: 0``).
    """
    takes = _option_types(optimizer_class(name))
    for key, value in options.items():
        if key not in takes:
            known = f"its options are {', '.join(takes)}" if takes else "it takes no options"
            raise ValueError(f"optimizer {name!r} has no option {key!r}; {known}")
        if not _accepts(takes[key], value):
            raise ValueError(
                f"optimizer {name!r}: option {key!r} must be {_describe(takes[key])}, got {value!r}"
            )
    if space is not None and options:
        # Built once and dropped: the constructor is the one place that knows the valid ranges.
        make_optimizer(name, space, seed=0, **options)


def _option_types(cls: type[Optimizer]) -> dict[str, Any]:
    """Option name -> annotated type, read from ``cls.__init__`` so that a new option needs no
    second list to be kept in step with it."""
    hints = typing.get_type_hints(cls.__init__)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: hints.get(p.name, Any)
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in _NOT_OPTIONS and p.kind in kinds
    }


def _alternatives(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` fits ``hint`` the way JSON values do: true/false is no number, and a
    whole number is a fine float but a fraction is no int (it would be truncated silently)."""
    return any(_fits(kind, value) for kind in _alternatives(hint))


def _fits(kind: Any, value: Any) -> bool:
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if isinstance(value, bool):  # before the numbers: bool is a subclass of int
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(kind, type) and isinstance(value, kind)


def _describe(hint: Any) -> str:
    words = [_TYPE_WORDS.get(k, getattr(k, "__name__", str(k))) for k in _alternatives(hint)]
    return " or ".join(w for w in words if w != "NoneType")


def restore_optimizer(state: dict[str, Any]) -> Optimizer:
    """Rebuild any registered optimizer from its ``state()``."""
    return Optimizer.restore(state)
