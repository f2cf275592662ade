"""Rewards: one number per experiment (higher is better) with its uncertainty.

``compute_reward(target, spectra)`` looks ``target["metric"]`` up in :data:`METRICS` (an explicit
table, never getattr on user input) and returns a :class:`Reward`. ``loss = -value`` is what the
optimizer minimises. ``spectra`` holds what the hardware daemon returned, any subset of::

    {"absorbance": {"wavelength_nm": [...], "absorbance": [...]},
     "cd": {"wavelength_nm": [...], "cd_mdeg": [...], "absorbance": [...]},
     "pl": {"wavelength_nm": [...], "intensity": [...], "abs_300nm": float}}

Metrics (value, units):

* ``max_abs_cd_at_exciton``: |CD| (mdeg) at the first exciton absorption peak, the MAOSIC
  paper's L = -|CD|. The exciton comes from ``absorbance`` or else from ``cd.absorbance``.
  Option ``window_nm`` (default 20) only sets the window of the reported ``max_abs_cd_mdeg``.
* ``max_abs_cd_in_window``: the largest |CD| (mdeg) within ``window_nm`` of the exciton.
* ``target_wavelength``: ``-|exciton_nm - wavelength_nm|`` (nm): 0 is a perfect hit. Option
  ``source``: ``"absorbance"`` (default, first exciton peak) or ``"pl"`` (emission peak).
* ``max_pl_intensity``: PL_I, the emission peak height (counts).
* ``max_plqy``: the PLQY proxy (PL area per absorbed fraction at 300 nm). Option
  ``calibration`` ``{"intercept": a, "slope": b}`` (slope > 0) makes it the calibrated
  absolute PLQY ``a + b * proxy`` (%), fitted from ex-situ measurements (maosic/attachments.py)
  and frozen into the target at submission; its uncertainty is ``b`` times the proxy's.
* ``weighted``: ``sum(weight_i * value_i / scale_i)`` over ``terms`` (each a target dict of a
  non-weighted metric plus ``weight``, default 1, and ``scale``, default 1, in the term's
  units); the uncertainty adds the terms' in quadrature (they are treated as independent).

Optional ``goal``: a reward value that counts as reached (``Reward.reached``).
Missing spectra or an unusable one raise :class:`.errors.SpectrumError` naming it: an experiment
without an honest reward must be recorded as failed, not scored with a made-up number. That
includes a spectrum whose peak fit leaves structure in its residual (``reason="misfit"``, raised
by the features layer): a number read off a model that does not explain the data is not a
measurement.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SpectrumError
from .features import absorption_features, cd_features, pl_features
from .threads import single_threaded


@dataclass
class Reward:
    metric: str
    value: float
    uncertainty: float
    features: dict[str, Any] = field(default_factory=dict)
    fits: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    goal: float | None = None

    @property
    def loss(self) -> float:
        return -self.value

    @property
    def reached(self) -> bool | None:
        return None if self.goal is None else self.value >= self.goal

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "loss": self.loss,
            "uncertainty": self.uncertainty,
            "goal": self.goal,
            "reached": self.reached,
            "features": self.features,
            "fits": self.fits,
            "flags": list(self.flags),
        }


class _Context:
    """Features computed at most once per spectrum, shared by the terms of a target."""

    def __init__(self, spectra: Mapping[str, Any]) -> None:
        if not isinstance(spectra, Mapping):
            raise SpectrumError(
                f"must be a dict of spectra, got {type(spectra).__name__}",
                where="spectra",
                reason="bad_argument",
            )
        unknown = set(spectra) - {"absorbance", "cd", "pl"}
        if unknown:
            raise SpectrumError(
                f"unknown spectrum name(s) {sorted(unknown)}; expected 'absorbance', 'cd', 'pl'",
                where="spectra",
            )
        self.spectra = spectra
        self.cache: dict[tuple[str, float], dict[str, Any]] = {}

    def _get(self, name: str, *keys: str) -> list[Any]:
        spec = self.spectra.get(name)
        if spec is None:
            raise SpectrumError(
                "this target needs it but it was not measured",
                where=f"spectra.{name}",
                reason="missing",
            )
        if not isinstance(spec, Mapping):
            raise SpectrumError("must be a dict", where=f"spectra.{name}")
        out = []
        for k in keys:
            if k not in spec:
                raise SpectrumError(f"missing key {k!r}", where=f"spectra.{name}", reason="missing")
            out.append(spec[k])
        return out

    def _detector_flags(self, name: str, feats: dict[str, Any]) -> dict[str, Any]:
        """Add ``"saturated"`` when the instrument itself reported saturation."""
        spec = self.spectra.get(name)
        if (
            isinstance(spec, Mapping)
            and spec.get("saturated")
            and "saturated" not in feats["flags"]
        ):
            feats["flags"].append("saturated")
        return feats

    def absorption(self) -> dict[str, Any]:
        if ("absorbance", 0.0) not in self.cache:
            if "absorbance" in self.spectra:
                wl, a = self._get("absorbance", "wavelength_nm", "absorbance")
                where = "spectra.absorbance"
            else:
                wl, a = self._get("cd", "wavelength_nm", "absorbance")
                where = "spectra.cd.absorbance"
            feats = absorption_features(wl, a, where=where)
            source = "absorbance" if "absorbance" in self.spectra else "cd"
            self.cache[("absorbance", 0.0)] = self._detector_flags(source, feats)
        return self.cache[("absorbance", 0.0)]

    def cd(self, window_nm: float) -> dict[str, Any]:
        key = ("cd", window_nm)
        if key not in self.cache:
            exc = self.absorption()["exciton_nm"]
            wl, cd = self._get("cd", "wavelength_nm", "cd_mdeg")
            absorbance = self.spectra["cd"].get("absorbance")
            feats = cd_features(
                wl, cd, exc, window_nm=window_nm, where="spectra.cd", absorbance=absorbance
            )
            self.cache[key] = self._detector_flags("cd", feats)
        return self.cache[key]

    def pl(self) -> dict[str, Any]:
        if ("pl", 0.0) not in self.cache:
            wl, y = self._get("pl", "wavelength_nm", "intensity")
            a300 = self.spectra["pl"].get("abs_300nm")
            feats = pl_features(wl, y, a300, where="spectra.pl")
            self.cache[("pl", 0.0)] = self._detector_flags("pl", feats)
        return self.cache[("pl", 0.0)]


def _number(target: Mapping[str, Any], key: str, default: float | None, where: str) -> float:
    raw = target.get(key, default)
    if raw is None:
        raise SpectrumError(f"needs {key!r}", where=where, reason="missing")
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise SpectrumError(f"{key!r} must be a finite number, got {raw!r}", where=where)
    return float(raw)


Term = tuple[float, float, list[str]]  # value, uncertainty, flags


def _abs_cd(target: Mapping[str, Any], ctx: _Context, where: str) -> Term:
    window = _number(target, "window_nm", 20.0, where)
    f = ctx.cd(window)
    return f["abs_cd_at_exciton_mdeg"], f["cd_at_exciton_mdeg_err"], f["flags"]


def _max_cd_window(target: Mapping[str, Any], ctx: _Context, where: str) -> Term:
    window = _number(target, "window_nm", 20.0, where)
    f = ctx.cd(window)
    return f["max_abs_cd_mdeg"], f["max_abs_cd_mdeg_err"], f["flags"]


def _target_wavelength(target: Mapping[str, Any], ctx: _Context, where: str) -> Term:
    goal_nm = _number(target, "wavelength_nm", None, where)
    source = target.get("source", "absorbance")
    if source == "absorbance":
        f = ctx.absorption()
        nm, err = f["exciton_nm"], f["exciton_nm_err"]
    elif source == "pl":
        f = ctx.pl()
        nm, err = f["pl_nm"], f["pl_nm_err"]
    else:
        raise SpectrumError(f"'source' must be 'absorbance' or 'pl', got {source!r}", where=where)
    return -abs(nm - goal_nm), err, f["flags"]


def _pl_intensity(target: Mapping[str, Any], ctx: _Context, where: str) -> Term:
    f = ctx.pl()
    return f["pl_intensity"], f["pl_intensity_err"], f["flags"]


def _plqy(target: Mapping[str, Any], ctx: _Context, where: str) -> Term:
    f = ctx.pl()
    if f["plqy_proxy"] is None:
        raise SpectrumError(
            "the PLQY proxy needs abs_300nm > 0 with the PL spectrum",
            where="spectra.pl.abs_300nm",
            reason="missing",
        )
    calibration = target.get("calibration")
    if calibration is None:
        return f["plqy_proxy"], f["plqy_proxy_err"], f["flags"]
    _check_kind("calibration", "calibration", calibration, f"{where}.calibration")
    a, b = float(calibration["intercept"]), float(calibration["slope"])
    return a + b * f["plqy_proxy"], b * f["plqy_proxy_err"], f["flags"]


_SIMPLE: dict[str, Callable[[Mapping[str, Any], _Context, str], Term]] = {
    "max_abs_cd_at_exciton": _abs_cd,
    "max_abs_cd_in_window": _max_cd_window,
    "target_wavelength": _target_wavelength,
    "max_pl_intensity": _pl_intensity,
    "max_plqy": _plqy,
}

METRICS: dict[str, str] = {
    "max_abs_cd_at_exciton": "maximise |CD| (mdeg) at the first exciton absorption peak "
    "(the MAOSIC paper's loss L = -|CD|)",
    "max_abs_cd_in_window": "maximise the largest |CD| (mdeg) within window_nm of the exciton",
    "target_wavelength": "bring the exciton (or PL, source='pl') peak to wavelength_nm: "
    "reward = -|peak - target| (nm)",
    "max_pl_intensity": "maximise the PL emission peak intensity PL_I (counts)",
    "max_plqy": "maximise the PLQY proxy: PL area / absorbed fraction at 300 nm",
    "weighted": "weighted sum of the other metrics: terms=[{metric, weight, scale, ...}]",
}


# Each metric's reward unit, for labels: the units METRICS describes. A weighted sum divides
# each term by its scale (in the term's units), so it has none ("").
METRIC_UNITS: dict[str, str] = {
    "max_abs_cd_at_exciton": "mdeg",
    "max_abs_cd_in_window": "mdeg",
    "target_wavelength": "nm",
    "max_pl_intensity": "counts",
    "max_plqy": "a.u.",  # the PLQY proxy: PL area per absorbed fraction, not a true yield
    "weighted": "",
}


def reward_unit(target: Any) -> str | None:
    """The unit of a target's reward ("" for a weighted sum), None for no known metric."""
    metric = target.get("metric") if isinstance(target, Mapping) else None
    if metric == "max_plqy" and target.get("calibration") is not None:
        return "%"  # calibrated: the absolute PLQY
    return METRIC_UNITS.get(metric) if isinstance(metric, str) else None


def _metric_name(target: Mapping[str, Any], where: str) -> str:
    if not isinstance(target, Mapping):
        raise SpectrumError(f"must be a dict, got {type(target).__name__}", where=where)
    metric = target.get("metric")
    if metric not in METRICS:
        raise SpectrumError(
            f"unknown metric {metric!r}; expected one of {sorted(METRICS)}", where=f"{where}.metric"
        )
    return str(metric)


def compute_reward(target: Mapping[str, Any], spectra: Mapping[str, Any]) -> Reward:
    """Score one experiment's spectra against a request's target (see the module docstring).

    Raises:
        SpectrumError: unknown metric or bad option (``where`` names the target key), a
            spectrum the metric needs is missing or unusable (``where`` names it).
    """
    with single_threaded():
        return _compute(target, spectra)


def _compute(target: Mapping[str, Any], spectra: Mapping[str, Any]) -> Reward:
    metric = _metric_name(target, "target")
    goal = None if target.get("goal") is None else _number(target, "goal", None, "target")
    ctx = _Context(spectra)
    flags: list[str] = []
    if metric == "weighted":
        terms = target.get("terms")
        if not isinstance(terms, list) or not terms:
            raise SpectrumError("'terms' must be a non-empty list", where="target.terms")
        value, var = 0.0, 0.0
        parts = []
        for i, term in enumerate(terms):
            where = f"target.terms[{i}]"
            name = _metric_name(term, where)
            if name == "weighted":
                raise SpectrumError("weighted terms cannot nest", where=f"{where}.metric")
            weight = _number(term, "weight", 1.0, where)
            scale = _number(term, "scale", 1.0, where)
            if scale <= 0:
                raise SpectrumError(f"'scale' must be > 0, got {scale}", where=where)
            v, u, f = _SIMPLE[name](term, ctx, where)
            value += weight * v / scale
            var += (weight * u / scale) ** 2
            flags += [x for x in f if x not in flags]
            parts.append(
                {"metric": name, "value": v, "uncertainty": u, "weight": weight, "scale": scale}
            )
        uncertainty = math.sqrt(var)
        extra: dict[str, Any] = {"terms": parts}
    else:
        value, uncertainty, f = _SIMPLE[metric](target, ctx, "target")
        flags += f
        extra = {}
    features: dict[str, Any] = dict(extra)
    fits: dict[str, Any] = {}
    for (name, _), feats in ctx.cache.items():
        features[name] = {k: v for k, v in feats.items() if k != "fit"}
        fits[name] = feats["fit"]
    return Reward(
        metric=metric,
        value=float(value),
        uncertainty=float(uncertainty),
        features=features,
        fits=fits,
        flags=flags,
        goal=goal,
    )


# Each metric's options, checked when a request is submitted (check_target), long before any
# spectrum exists: name -> (kind, required). "number" is a finite number, "positive" one > 0.
_OPTIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "max_abs_cd_at_exciton": {"window_nm": ("positive", False)},
    "max_abs_cd_in_window": {"window_nm": ("positive", False)},
    "target_wavelength": {"wavelength_nm": ("positive", True), "source": ("source", False)},
    "max_pl_intensity": {},
    "max_plqy": {"calibration": ("calibration", False)},
    "weighted": {"terms": ("terms", True)},
}
# Keys every target may have besides its metric's options (the campaign's stopping rules).
# ``confirm``: replicates of a best that reached the goal before the request stops on it; the
# goal is then judged on their mean (maosic/campaign.py).
_COMMON: dict[str, tuple[str, bool]] = {
    "goal": ("number", False),
    "patience": ("count", False),
    "confirm": ("replicates", False),
}
_TERM_KEYS: dict[str, tuple[str, bool]] = {
    "weight": ("number", False),
    "scale": ("positive", False),
}
_SOURCES = ("absorbance", "pl")
MAX_PATIENCE = 10_000
MAX_CONFIRM = 20  # replicates to confirm a best: the papers ran 3-5


def check_target(target: Any, where: str = "target") -> dict[str, Any]:
    """The target, checked whole before it is stored: metric known, every option known to that
    metric and of the right kind, ``goal`` a finite number, ``patience`` a whole number of
    experiments. SpectrumError (``where`` names the key) for the first problem, so a request
    whose target cannot score an experiment is refused before the lab runs one."""
    metric = _metric_name(target, where)
    allowed = {"metric": ("metric", True), **_OPTIONS[metric]}
    if where == "target":
        allowed |= _COMMON
    _check_keys(target, allowed, where, metric)
    if metric == "weighted":
        for i, term in enumerate(target["terms"]):
            term_where = f"{where}.terms[{i}]"
            name = _metric_name(term, term_where)
            if name == "weighted":
                raise SpectrumError("weighted terms cannot nest", where=f"{term_where}.metric")
            keys = {"metric": ("metric", True), **_OPTIONS[name], **_TERM_KEYS}
            _check_keys(term, keys, term_where, name)
    return dict(target)


def _check_keys(
    target: Mapping[str, Any], allowed: dict[str, tuple[str, bool]], where: str, metric: str
) -> None:
    unknown = sorted(str(k) for k in target if k not in allowed)
    if unknown:
        raise SpectrumError(
            f"unknown option {unknown[0]!r} for metric {metric!r}; it takes "
            + (", ".join(sorted(allowed)) or "no options"),
            where=f"{where}.{unknown[0]}"[:120],
        )
    for key, (kind, required) in allowed.items():
        value = target.get(key)
        if value is None:
            if required:
                raise SpectrumError(f"metric {metric!r} needs {key!r}", where=f"{where}.{key}")
            continue
        _check_kind(key, kind, value, f"{where}.{key}")


def _check_kind(key: str, kind: str, value: Any, where: str) -> None:
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind in ("number", "positive") and not number:
        raise SpectrumError(f"{key!r} must be a finite number, got {value!r}"[:200], where=where)
    if kind == "positive" and value <= 0:
        raise SpectrumError(f"{key!r} must be > 0, got {value!r}", where=where)
    if kind == "count" and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PATIENCE
    ):
        raise SpectrumError(
            f"{key!r} must be a whole number of experiments from 1 to {MAX_PATIENCE}, "
            f"got {value!r}"[:200],
            where=where,
        )
    if kind == "replicates" and (
        isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONFIRM
    ):
        wanted = f"a whole number of replicates from 1 to {MAX_CONFIRM}"
        raise SpectrumError(f"{key!r} must be {wanted}, got {value!r}"[:200], where=where)
    if kind == "source" and value not in _SOURCES:
        raise SpectrumError(f"'source' must be 'absorbance' or 'pl', got {value!r}"[:200],
                            where=where)  # fmt: skip
    if kind == "terms" and (not isinstance(value, list) or not value):
        raise SpectrumError("'terms' must be a non-empty list", where=where)
    if kind == "calibration":
        _check_calibration(value, where)


def _check_calibration(value: Any, where: str) -> None:
    """``{"intercept": a, "slope": b}``: finite numbers, b > 0 (a higher proxy must mean a
    higher yield, or maximising the calibrated value would minimise the real one)."""
    if not isinstance(value, Mapping) or set(value) != {"intercept", "slope"}:
        raise SpectrumError(
            "'calibration' must be an object with exactly 'intercept' and 'slope'", where=where
        )
    for key in ("intercept", "slope"):
        _check_kind(key, "number", value[key], f"{where}.{key}")
    if value["slope"] <= 0:
        raise SpectrumError(f"'slope' must be > 0, got {value['slope']!r}", where=where)
