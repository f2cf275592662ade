"""Reaction configuration (paper Fig. S10, as valid JSON): validation and search space.

Schema (docs/language.md, "Reaction configuration")::

    {"type": str, "name": str,
     "reagent": [{"formula": str, "ratio": number, "name"?: str}, ...],
     "metric": str | object,
     "param": {NAME: {"default": number, "bound": [lo, hi], "dx": number, "var": 0 | 1,
                      "unit"?: str, "description"?: str}},
     "init"?: [instruction, ...],
     "experiment": [instruction, ...]   and/or   "formula": str,
     "optimizer"?: str | object (default: the core's, maosic.optimize.DEFAULT_OPTIMIZER),
     "max_expts": int, "nreq"?: int (default 1; 0 = the optimizer's own batch size),
     "steady_state"?: {"tolerance_pct"?: number, "interval_s"?: number, "window"?: int,
                       "max_readings"?: int, "start_s"?: number},
     "pipeline"?: bool (default true: the next synthesis overlaps this sample's measurement
                        where the rig allows it; maosic/pipeline.py)}

Every problem raises LanguageError at the line/column of the offending JSON value.  Keys that
start with "_" are comments and are ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maosic.language.errors import LanguageError, brief
from maosic.language.expr import Expr, var_nodes
from maosic.language.instructions import Locator, export_instruction
from maosic.language.jsonpos import loads_with_positions
from maosic.language.shorthand import expand_instructions

if TYPE_CHECKING:
    from maosic.language.compiler import Program

CONTINUOUS_STEPS = 1_000_000  # grid steps across the range of a continuous (dx: 0) parameter
MAX_COUNT = 100_000  # max_expts and nreq: far above any campaign, below any overflow
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_KEYS = {
    "type",
    "name",
    "reagent",
    "metric",
    "param",
    "init",
    "experiment",
    "formula",
    "optimizer",
    "max_expts",
    "nreq",
    "description",
    "chemistry",
    "steady_state",
    "pipeline",
}
# steady_state: repeated in-situ readings until the signal is stable (docs/language.md).
# Each key: (default, low, high, whole number?, unit); start_s None = half the pumping time.
STEADY_STATE_KEYS: dict[str, tuple[float | None, float, float, bool, str]] = {
    "tolerance_pct": (2.0, 0.0, 100.0, False, "%"),
    "interval_s": (30.0, 0.0, 3600.0, False, "s"),
    "window": (3, 2, 100, True, ""),
    "max_readings": (20, 2, 1000, True, ""),
    "start_s": (None, 0.0, 86400.0, False, "s"),
}


@dataclass
class Reagent:
    """A stock reagent: ``formula`` (chemical formula or label), molar ``ratio``, and ``name``
    (the daemon's stock-bottle name; defaults to the formula)."""

    formula: str
    ratio: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.formula

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"formula": self.formula, "ratio": self.ratio}
        if self.name != self.formula:
            out["name"] = self.name
        return out


@dataclass
class Param:
    """A reaction parameter: ``var`` True means the optimizer searches it within ``bound`` on a
    grid of step ``dx``; otherwise it is the constant ``default``."""

    name: str
    default: float
    bound: tuple[float, float]
    dx: float
    var: bool
    unit: str = ""
    description: str = ""

    @property
    def resolution(self) -> float:
        """The optimizer's grid step: ``dx``, or for ``dx: 0`` (continuous) a millionth of the
        range, finer than any instrument sets a temperature or a flow."""
        return self.dx if self.dx > 0 else (self.bound[1] - self.bound[0]) / CONTINUOUS_STEPS

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"default": self.default}
        if self.bound[0] != self.bound[1]:  # a constant written without a bound keeps none
            out["bound"] = [self.bound[0], self.bound[1]]
        if self.dx or self.var:
            out["dx"] = self.dx
        out["var"] = int(self.var)
        if self.unit:
            out["unit"] = self.unit
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class SearchSpace:
    """The optimizer's box: only parameters with ``var: 1``, in configuration order."""

    names: list[str]
    lower: np.ndarray
    upper: np.ndarray
    resolution: np.ndarray


@dataclass
class ReactionConfig:
    """A validated reaction configuration.  Build it with :func:`load_config`."""

    name: str
    type: str
    reagents: list[Reagent]
    metric: Any
    params: dict[str, Param]
    init: list[dict[str, Any]]
    experiment: list[dict[str, Any]]
    optimizer: Any = None  # None: the core's default (maosic.optimize.DEFAULT_OPTIMIZER)
    max_expts: int = 250
    nreq: int = 1
    formula: str | None = None
    description: str = ""
    chemistry: str = ""
    # {"tolerance_pct", "interval_s", "window", "max_readings", "start_s"} with defaults filled
    # in (start_s None: half the pumping time), or None: one in-situ reading, as planned.
    steady_state: dict[str, Any] | None = None
    # False: every experiment runs start to end before the next one begins (maosic/pipeline.py)
    pipeline: bool = True
    source: str = field(default="", repr=False, compare=False)
    where: str = field(default="", repr=False, compare=False)
    _init_internal: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)
    _experiment_internal: list[dict[str, Any]] = field(
        default_factory=list, repr=False, compare=False
    )

    def target(self, fallback: str) -> dict[str, Any]:
        """The configuration's ``metric`` as a target dict: a name, a whole target object, or
        the paper's array form (mapped by :data:`PAPER_METRICS`); ``fallback`` when empty."""
        if isinstance(self.metric, dict):
            return dict(self.metric)
        if isinstance(self.metric, list):
            return paper_metric(self.metric, ValueError)
        return {"metric": self.metric or fallback}

    @property
    def optimizer_name(self) -> str | None:
        """The configured optimizer's name (None: the core's default)."""
        if isinstance(self.optimizer, dict):
            return str(self.optimizer["name"])
        return self.optimizer

    @property
    def optimizer_options(self) -> dict[str, Any]:
        """The configured optimizer's options (``{"name": "lhs", "design_size": 20}`` gives
        ``{"design_size": 20}``); checked against that optimizer's real options by the core."""
        if isinstance(self.optimizer, dict):
            return {k: v for k, v in self.optimizer.items() if k != "name"}
        return {}

    def search_space(self) -> SearchSpace:
        chosen = [p for p in self.params.values() if p.var]
        return SearchSpace(
            names=[p.name for p in chosen],
            lower=np.array([p.bound[0] for p in chosen], dtype=float),
            upper=np.array([p.bound[1] for p in chosen], dtype=float),
            resolution=np.array([p.resolution for p in chosen], dtype=float),
        )

    def defaults(self) -> dict[str, float]:
        return {name: p.default for name, p in self.params.items()}

    def init_internal(self) -> list[dict[str, Any]]:
        return list(self._init_internal)

    def program(self) -> Program:
        """The compiled experiment (from ``formula`` if given, else from ``experiment``)."""
        from maosic.language.compiler import compile_formula, make_program

        if self.formula is not None:
            return compile_formula(self.formula, self, where=f"{self.where or 'config'} formula")
        return make_program(
            list(self._experiment_internal),
            self.source,
            where=self.where,
            init=self.init_internal(),
            init_source=self.source,
            config=self,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type,
            "name": self.name,
            "metric": self.metric,
            "param": {name: p.to_dict() for name, p in self.params.items()},
            "init": self.init,
            "experiment": self.experiment,
            **({"optimizer": self.optimizer} if self.optimizer is not None else {}),
            "max_expts": self.max_expts,
            "nreq": self.nreq,
        }
        if self.reagents:  # an absent list stays absent (formulas then name stocks directly)
            out["reagent"] = [r.to_dict() for r in self.reagents]
        if self.formula is not None:
            out["formula"] = self.formula
        if self.description:
            out["description"] = self.description
        if self.chemistry:
            out["chemistry"] = self.chemistry
        if self.steady_state is not None:
            given = {k: v for k, v in self.steady_state.items() if v is not None}
            out["steady_state"] = given
        if not self.pipeline:
            out["pipeline"] = False
        return out


# The paper's metric form (Fig. S10: ``"metric": ["CD", ["wavelength", "peak"]]``): a spectrum
# kind, then what is read and where. "peak" means at the spectrum's own peak (for CD: at the
# first exciton absorption peak, where the paper reads |CD|); a number is a wavelength in nm.
# Each form maps onto one of the project's targets (maosic.analysis.reward.METRICS).
PAPER_METRICS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("CD", "wavelength", "peak"): {"metric": "max_abs_cd_at_exciton"},
    ("ABS-CD", "wavelength", "peak"): {"metric": "max_abs_cd_at_exciton"},
    ("CD", "max", "peak"): {"metric": "max_abs_cd_in_window"},
    ("PL", "intensity", "peak"): {"metric": "max_pl_intensity"},
    ("PL", "plqy", "peak"): {"metric": "max_plqy"},
    ("ABS", "wavelength", "nm"): {"metric": "target_wavelength", "source": "absorbance"},
    ("PL", "wavelength", "nm"): {"metric": "target_wavelength", "source": "pl"},
}


def paper_metric(metric: list[Any], fail: Any) -> dict[str, Any]:
    """The target for the paper's ``[KIND, [QUANTITY, "peak" | nm]]``; ``fail(message)`` builds
    the exception raised for a form not in :data:`PAPER_METRICS` (which the message lists)."""
    forms = ", ".join(
        json.dumps([k, [q, "peak" if w == "peak" else 500]]) for k, q, w in PAPER_METRICS
    )
    ok = (
        len(metric) == 2
        and isinstance(metric[0], str)
        and isinstance(metric[1], list)
        and len(metric[1]) == 2
        and isinstance(metric[1][0], str)
    )
    where = metric[1][1] if ok else None
    number = isinstance(where, int | float) and not isinstance(where, bool)
    if number and not (math.isfinite(where) and 0 < where < 100_000):
        raise fail(f"metric wavelength must be a finite number of nm > 0, got {brief(where)}")
    key = (metric[0], metric[1][0], "nm" if number else where) if ok else None
    if not (number or isinstance(where, str)):
        key = None  # a list or object there: unhashable, and no known form anyway
    if key not in PAPER_METRICS:
        raise fail(f"metric {brief(metric)} is not a known form; known forms: {forms}")
    target = dict(PAPER_METRICS[key])
    if number:
        target["wavelength_nm"] = float(where)
    return target


def formula_config(
    formula: str, space: dict[str, dict[str, Any]], name: str | None = None
) -> dict[str, Any]:
    """A configuration dict around ``formula`` and its search space (not yet validated).

    ``space`` maps a variable to ``{"bound": [lo, hi], "dx": .., "default": ..}`` (searched;
    by default started in the middle of the bounds at a resolution of 1/100 of the range) or
    to ``{"fixed": value}`` (held at that value, ``var: 0``). Used by the core's formula
    submissions and the web form alike, so both give the same configuration.
    """
    params: dict[str, dict[str, Any]] = {}
    for var, spec in space.items():
        if "fixed" in spec:
            params[var] = {"default": spec["fixed"], "var": 0}
            continue
        lo, hi = spec["bound"]
        params[var] = {
            "default": spec.get("default", _round((lo + hi) / 2)),
            "bound": [lo, hi],
            "dx": spec.get("dx", _round((hi - lo) / 100)),
            "var": 1,
        }
    return {
        "type": "reaction",
        "name": name or "formula request",
        "formula": formula,
        "param": params,
    }


def _round(value: float) -> float:
    return round(value, 12)  # no 0.30000000000000004 in a stored configuration


def load_config(data: dict[str, Any] | str | Path, *, where: str = "") -> ReactionConfig:
    """Validate a configuration given as a dict, JSON text, or a :class:`~pathlib.Path`.

    A ``str`` is always JSON text, never a file name: configurations arrive from callers as data,
    and only local tools (the terminal, tests) read a file, by passing a ``Path`` they chose.
    Raises LanguageError naming the line and column (in the JSON text; for a dict, in its
    ``json.dumps(indent=2)`` rendering) of the first problem.
    """
    text, label = _read(data, where)
    raw, offsets = loads_with_positions(text, label)
    loc = Locator(text, offsets, label)
    return _Validator(loc).config(raw)


def _read(data: dict[str, Any] | str | Path, where: str) -> tuple[str, str]:
    if isinstance(data, dict):
        try:
            return json.dumps(data, indent=2, ensure_ascii=False), where or "config"
        except (TypeError, ValueError) as exc:
            raise LanguageError(
                f"the configuration is not JSON-serialisable: {exc}",
                kind="config",
                where=where or "config",
            ) from None
    if isinstance(data, Path):
        try:
            return data.read_text(encoding="utf-8"), where or str(data)
        except (OSError, UnicodeDecodeError) as exc:
            raise LanguageError(
                f"cannot read configuration file {str(data)!r}: {exc}",
                kind="config",
                where=where or str(data),
            ) from None
    if isinstance(data, str):
        return data, where or "config"
    raise LanguageError(
        f"a configuration must be a JSON object or JSON text, got {type(data).__name__}",
        kind="config",
        where=where or "config",
    )


class _Validator:
    def __init__(self, loc: Locator) -> None:
        self.loc = loc

    def fail(
        self, path: tuple[Any, ...], message: str, kind: str = "config", at_key: bool = False
    ) -> LanguageError:
        return self.loc.error(path, message, kind, at_key)

    def string(self, raw: dict[str, Any], key: str, path: tuple[Any, ...] = ()) -> str:
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            where = path + (key,) if key in raw else path
            raise self.fail(where, f"{brief(key)} must be a non-empty string")
        return value

    def number(self, value: Any, path: tuple[Any, ...], what: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(path, f"{what} must be a finite number, got {brief(value)}")
        return float(value)

    def count(self, raw: dict[str, Any], key: str, default: int | None, minimum: int = 1) -> int:
        if key not in raw:
            if default is None:
                raise self.fail((), f"missing {key!r} (a whole number >= {minimum})")
            return default
        value = raw[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not minimum <= value <= MAX_COUNT
        ):
            raise self.fail(
                (key,),
                f"{brief(key)} must be a whole number from {minimum} to {MAX_COUNT}, "
                f"got {brief(value)}",
            )
        return value

    def optimizer(self, raw: dict[str, Any]) -> str | dict[str, Any] | None:
        """A name, or ``{"name": ..., option: value, ...}`` with scalar option values. Which
        options an optimizer takes is the core's business (maosic.optimize), checked there."""
        value = raw.get("optimizer")
        if value is None or (isinstance(value, str) and value.strip()):
            return value
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise self.fail(
                ("optimizer",),
                '\'optimizer\' must be a name such as "snobfit" or an object with a "name"',
            )
        for key, option in value.items():
            path = ("optimizer", key)
            if not _IDENT.fullmatch(key):
                raise self.fail(path, f"optimizer option {brief(key)} is not a name", at_key=True)
            if isinstance(option, float) and not math.isfinite(option):
                raise self.fail(path, f"optimizer option {key!r} must be finite")
            if key != "name" and not isinstance(option, str | int | float | bool):
                raise self.fail(
                    path, f"optimizer option {key!r} must be a number, a string or true/false"
                )
        return value

    def steady_state(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The ``steady_state`` object with its defaults filled in, or None when absent."""
        if "steady_state" not in raw:
            return None
        value = raw["steady_state"]
        if not isinstance(value, dict):
            raise self.fail(
                ("steady_state",),
                "'steady_state' must be an object such as "
                '{"tolerance_pct": 2.0, "interval_s": 30, "window": 3, "max_readings": 20}',
            )
        names = ", ".join(STEADY_STATE_KEYS)
        for key in value:
            if key not in STEADY_STATE_KEYS and not str(key).startswith("_"):
                raise self.fail(
                    ("steady_state", key),
                    f"unknown field {brief(key)} in 'steady_state'; fields are {names}",
                    at_key=True,
                )
        out: dict[str, Any] = {}
        for key, (default, low, high, whole, unit) in STEADY_STATE_KEYS.items():
            if key not in value:
                out[key] = default
                continue
            got = value[key]
            what = f"'steady_state.{key}'"
            if whole:
                if isinstance(got, bool) or not isinstance(got, int) or not low <= got <= high:
                    raise self.fail(
                        ("steady_state", key),
                        f"{what} must be a whole number from {low} to {high}, got {brief(got)}",
                    )
                out[key] = got
                continue
            number = self.number(got, ("steady_state", key), what)
            # a tolerance or an interval of 0 would never (or always) be met: above 0
            inside = low <= number <= high if key == "start_s" else low < number <= high
            if not inside:
                bound = f"from {low:g} to" if key == "start_s" else f"above {low:g}, at most"
                raise self.fail(
                    ("steady_state", key),
                    f"{what} must be {bound} {high:g} {unit}, got {brief(got)}",
                )
            out[key] = number
        if out["max_readings"] < out["window"]:
            raise self.fail(
                ("steady_state", "max_readings"),
                f"'steady_state.max_readings' ({out['max_readings']}) must be at least "
                f"'steady_state.window' ({out['window']}): stability needs a full window",
            )
        return out

    def config(self, raw: Any) -> ReactionConfig:
        if not isinstance(raw, dict):
            raise self.fail((), "a reaction configuration must be a JSON object { ... }")
        for key in raw:
            if key not in _TOP_KEYS and not key.startswith("_"):
                raise self.fail(
                    (key,),
                    f"unknown field {brief(key)}; fields are {', '.join(sorted(_TOP_KEYS))}",
                    at_key=True,
                )
        name = self.string(raw, "name")
        kind = self.string(raw, "type")
        reagents = self.reagents(raw)
        metric = raw.get("metric", "")
        if isinstance(metric, list):
            paper_metric(metric, lambda message: self.fail(("metric",), message))
        elif not isinstance(metric, str | dict) or (isinstance(metric, dict) and not metric):
            raise self.fail(
                ("metric",),
                "'metric' must be a name, an object or the paper's form such as "
                '["CD", ["wavelength", "peak"]]',
            )
        params = self.params(raw)
        optimizer = self.optimizer(raw)
        formula = raw.get("formula")
        if formula is not None and (not isinstance(formula, str) or not formula.strip()):
            raise self.fail(("formula",), "'formula' must be a non-empty string")
        if "experiment" not in raw and formula is None:
            raise self.fail((), "missing 'experiment' (a list of instruction codes) or 'formula'")
        for key in ("description", "chemistry"):
            if key in raw and not isinstance(raw[key], str):
                raise self.fail((key,), f"{brief(key)} must be a string")
        if "pipeline" in raw and not isinstance(raw["pipeline"], bool):
            raise self.fail(
                ("pipeline",), f"'pipeline' must be true or false, got {brief(raw['pipeline'])}"
            )
        cfg = ReactionConfig(
            name=name,
            type=kind,
            reagents=reagents,
            metric=metric,
            params=params,
            init=[],
            experiment=[],
            optimizer=optimizer,
            max_expts=self.count(raw, "max_expts", 250),
            nreq=self.count(raw, "nreq", 1, minimum=0),
            formula=formula,
            description=raw.get("description", ""),
            chemistry=raw.get("chemistry", ""),
            steady_state=self.steady_state(raw),
            pipeline=raw.get("pipeline", True),
            source=self.loc.source,
            where=self.loc.where,
        )
        cfg._init_internal = self.instructions(raw, "init", cfg, required=False)
        cfg.init = [export_instruction(i) for i in cfg._init_internal]
        if "experiment" in raw:
            cfg._experiment_internal = self.instructions(raw, "experiment", cfg, required=True)
            cfg.experiment = [export_instruction(i) for i in cfg._experiment_internal]
        if formula is not None:
            compiled = cfg.program().instructions
            if "experiment" in raw:
                self.agree(cfg.experiment, compiled)
            cfg.experiment = compiled
        return cfg

    def reagents(self, raw: dict[str, Any]) -> list[Reagent]:
        if "reagent" not in raw:
            return []  # formulas then name stock reagents directly (see docs)
        items = raw["reagent"]
        if not isinstance(items, list) or not items:
            raise self.fail(
                ("reagent",),
                '\'reagent\' must be a non-empty list of {"formula", "ratio"}',
            )
        out: list[Reagent] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            path = ("reagent", i)
            if not isinstance(item, dict):
                raise self.fail(path, 'a reagent must be an object {"formula", "ratio"}')
            for key in item:
                if key not in ("formula", "ratio", "name") and not key.startswith("_"):
                    raise self.fail(
                        path + (key,),
                        f"unknown reagent field {brief(key)} (formula, ratio, name)",
                        at_key=True,
                    )
            formula = self.string(item, "formula", path)
            ratio = self.number(item.get("ratio", 1.0), path + ("ratio",), "ratio")
            if ratio < 0:
                raise self.fail(path + ("ratio",), "ratio must be >= 0")
            name = self.string(item, "name", path) if "name" in item else formula
            if name in seen:
                raise self.fail(path, f"reagent {brief(name)} is listed twice")
            seen.add(name)
            out.append(Reagent(formula=formula, ratio=ratio, name=name))
        return out

    def params(self, raw: dict[str, Any]) -> dict[str, Param]:
        items = raw.get("param")
        if not isinstance(items, dict):
            raise self.fail(
                ("param",) if "param" in raw else (),
                "'param' must be an object {NAME: {default, bound, dx, var}}",
            )
        out: dict[str, Param] = {}
        for name, spec in items.items():
            path = ("param", name)
            if not _IDENT.fullmatch(name):
                raise self.fail(
                    path,
                    f"parameter name {brief(name)} must be usable as ${name}: "
                    "letters, digits and _, not starting with a digit",
                )
            if not isinstance(spec, dict):
                raise self.fail(path, "a parameter must be an object {default, bound, dx, var}")
            for key in spec:
                if key not in ("default", "bound", "dx", "var", "unit", "description"):
                    raise self.fail(
                        path + (key,), f"unknown parameter field {brief(key)}", at_key=True
                    )
            var_raw = spec.get("var", 0)
            if var_raw not in (0, 1) or (isinstance(var_raw, float)):
                raise self.fail(path + ("var",), "var must be 0 (constant) or 1 (optimised)")
            var = bool(var_raw)
            if "default" not in spec:
                raise self.fail(path, "missing 'default'")
            default = self.number(spec["default"], path + ("default",), "default")
            if var or "bound" in spec:
                bound = spec.get("bound")
                if not isinstance(bound, list) or len(bound) != 2:
                    raise self.fail(
                        path + ("bound",) if "bound" in spec else path,
                        "bound must be a list [lower, upper]",
                    )
                lo = self.number(bound[0], path + ("bound", 0), "the lower bound")
                hi = self.number(bound[1], path + ("bound", 1), "the upper bound")
                if not lo <= hi:
                    raise self.fail(
                        path + ("bound",),
                        f"the lower bound {lo:g} must not be above the upper bound {hi:g}",
                    )
                # The paper's way to hold a parameter: a bound [a, a] is the constant a.
                var = var and lo < hi
                if not lo <= default <= hi:
                    raise self.fail(
                        path + ("default",),
                        f"default {default:g} is outside its bound [{lo:g}, {hi:g}]",
                        "out-of-range",
                    )
            else:
                lo = hi = default
            if var or "dx" in spec:
                if "dx" not in spec:
                    raise self.fail(path, "missing 'dx' (the grid resolution)")
                dx = self.number(spec["dx"], path + ("dx",), "dx")
                # dx 0 is the paper's "continuous": no rounding (see search_space).
                if dx < 0 or (var and dx > hi - lo):
                    raise self.fail(
                        path + ("dx",),
                        f"dx must be 0 (continuous) or > 0 and at most the bound's width "
                        f"{hi - lo:g}",
                    )
            else:
                dx = 0.0
            unit = spec.get("unit", "")
            description = spec.get("description", "")
            if not isinstance(unit, str) or not isinstance(description, str):
                raise self.fail(path, "unit and description must be strings")
            out[name] = Param(name, default, (lo, hi), dx, var, unit, description)
        if not any(p.var for p in out.values()):
            raise self.fail(("param",), "no parameter has var: 1, so there is nothing to optimise")
        return out

    def instructions(
        self, raw: dict[str, Any], key: str, cfg: ReactionConfig, required: bool
    ) -> list[dict[str, Any]]:
        items = raw.get(key, [])
        if not isinstance(items, list) or (required and not items):
            raise self.fail(
                (key,),
                f"{key!r} must be a {'non-empty ' if required else ''}list of instruction codes",
            )
        # Objects and the paper's strings ("FILL Cs-Precursor", "HEAT $temp") alike.
        out = expand_instructions(items, self.loc, key, cfg.reagents, set(cfg.params))
        names = {r.name for r in cfg.reagents}
        for i, inst in enumerate(out):
            if names and inst["code"] == "FILL" and inst["reagent"] not in names:
                raise self.fail(
                    (key, i, "reagent"),
                    f"reagent {brief(inst['reagent'])} is not in "
                    f"the reaction's reagent list ({', '.join(sorted(names))})",
                    "unknown-reagent",
                )
            for expr in _exprs(inst):
                self.defined(expr, cfg, (key, i))
        return out

    def defined(self, expr: Expr, cfg: ReactionConfig, path: tuple[Any, ...]) -> None:
        for node in var_nodes(expr):
            if node.name not in cfg.params:
                raise LanguageError.at(
                    self.loc.source,
                    node.offset,
                    f"{'.'.join(map(str, path))}: ${node.name} is not defined by the "
                    f"configuration's param ({', '.join('$' + p for p in cfg.params)})",
                    kind="undefined-variable",
                    where=self.loc.where,
                )

    def agree(self, written: list[dict[str, Any]], compiled: list[dict[str, Any]]) -> None:
        for i, (a, b) in enumerate(zip(written, compiled, strict=False)):
            if a != b:
                raise self.fail(
                    ("experiment", i),
                    f"differs from what 'formula' compiles to: "
                    f"expected {json.dumps(b, ensure_ascii=False)}",
                )
        if len(written) != len(compiled):
            raise self.fail(
                ("experiment",),
                f"has {len(written)} instructions but 'formula' compiles to {len(compiled)}",
            )


def _exprs(inst: dict[str, Any]) -> list[Expr]:
    found: list[Expr] = []
    for key, value in inst.items():
        if isinstance(value, Expr):
            found.append(value)
        elif key == "moves":
            for move in value:
                found.extend(v for v in move.values() if isinstance(v, Expr))
    return found
