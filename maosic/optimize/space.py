"""Search space: box bounds and a resolution grid.

Every optimizer works internally on integer grid indices: index ``k`` of dimension ``i`` is the
value ``lower[i] + k * resolution[i]``. Working on integers makes "never repeat a measured point"
an exact set lookup instead of a floating-point comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A range must be a whole number of resolution steps within this relative tolerance; beyond it
# the last grid point would fall short of the upper bound, which is almost always a typo.
_STEP_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class Space:
    """A box with a resolution grid.

    names: parameter names (e.g. ``["T", "C"]``).
    lower, upper: bounds in the parameters' own units (e.g. °C, mmol/mL), lower < upper.
    resolution: grid step per parameter in the same units (e.g. 0.5 °C, 0.01 mmol/mL); it must
        divide ``upper - lower`` into a whole number of steps.
    """

    names: list[str]
    lower: np.ndarray
    upper: np.ndarray
    resolution: np.ndarray
    steps: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [str(n) for n in self.names]
        lower = _as_vector(self.lower, "lower")
        upper = _as_vector(self.upper, "upper")
        resolution = _as_vector(self.resolution, "resolution")
        d = len(names)
        if d == 0:
            raise ValueError("search space: 'names' is empty; at least one parameter is needed")
        if len(set(names)) != d:
            raise ValueError(f"search space: duplicate parameter names in {names}")
        for label, vec in (("lower", lower), ("upper", upper), ("resolution", resolution)):
            if vec.shape != (d,):
                raise ValueError(
                    f"search space: '{label}' has {vec.size} values but there are {d} names {names}"
                )
        steps = np.zeros(d, dtype=np.int64)
        for i, name in enumerate(names):
            lo, hi, res = lower[i], upper[i], resolution[i]
            if not lo < hi:
                raise ValueError(
                    f"search space: parameter '{name}' has lower bound {lo} >= upper bound {hi}"
                )
            if not res > 0:
                raise ValueError(f"search space: parameter '{name}' has resolution {res} <= 0")
            ratio = (hi - lo) / res
            whole = round(ratio)
            if whole < 1 or abs(ratio - whole) > _STEP_TOLERANCE * max(1.0, ratio):
                raise ValueError(
                    f"search space: resolution {res} of parameter '{name}' does not divide its "
                    f"range [{lo}, {hi}] into a whole number of steps ({ratio:.6g} steps)"
                )
            steps[i] = whole
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "resolution", resolution)
        object.__setattr__(self, "steps", steps)

    def __eq__(self, other: object) -> bool:
        # arrays make the generated dataclass __eq__ ambiguous; compare the plain values
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def grid_size(self) -> int:
        """Number of distinct grid points (may be astronomically large in 6-D)."""
        return math.prod(int(s) + 1 for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "lower": [float(v) for v in self.lower],
            "upper": [float(v) for v in self.upper],
            "resolution": [float(v) for v in self.resolution],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Space:
        return cls(
            names=list(data["names"]),
            lower=np.asarray(data["lower"], dtype=float),
            upper=np.asarray(data["upper"], dtype=float),
            resolution=np.asarray(data["resolution"], dtype=float),
        )

    # --- conversions -------------------------------------------------------------------------

    def values(self, index: np.ndarray) -> np.ndarray:
        """Grid indices (..., d) -> parameter values in their units."""
        return self.lower + np.asarray(index, dtype=float) * self.resolution

    def unit(self, index: np.ndarray) -> np.ndarray:
        """Grid indices (..., d) -> coordinates in the unit cube [0, 1]^d (what models see)."""
        return np.asarray(index, dtype=float) / self.steps

    def index_of_unit(self, z: np.ndarray) -> np.ndarray:
        """Unit-cube coordinates (..., d) -> nearest grid indices, clipped into the box."""
        idx = np.rint(np.asarray(z, dtype=float) * self.steps)
        return np.clip(idx, 0, self.steps).astype(np.int64)

    def to_point(self, index: np.ndarray) -> dict[str, float]:
        """One grid index vector -> ``{name: value}`` rounded to the grid's decimals."""
        vals = self.values(index)
        return {
            name: round(float(v), _decimals(float(r)))
            for name, v, r in zip(self.names, vals, self.resolution, strict=True)
        }

    def index_of_point(self, point: Any, where: str) -> np.ndarray:
        """A point (mapping by name, or a sequence in ``names`` order) -> grid indices.

        Off-grid values are snapped to the nearest grid point (documented treatment: earlier
        experiments may have been run at a finer resolution); values outside the bounds by more
        than half a step raise ValueError naming the parameter and ``where``.
        """
        vec = self._vector_of_point(point, where)
        ratio = (vec - self.lower) / self.resolution
        for i, name in enumerate(self.names):
            if not math.isfinite(ratio[i]):
                raise ValueError(f"{where}: parameter '{name}' is not a finite number")
            if ratio[i] < -0.5 - 1e-9 or ratio[i] > self.steps[i] + 0.5 + 1e-9:
                raise ValueError(
                    f"{where}: parameter '{name}' = {vec[i]} is outside its bounds "
                    f"[{self.lower[i]}, {self.upper[i]}]"
                )
        return np.clip(np.rint(ratio), 0, self.steps).astype(np.int64)

    def _vector_of_point(self, point: Any, where: str) -> np.ndarray:
        if isinstance(point, Mapping):
            missing = [n for n in self.names if n not in point]
            extra = [k for k in point if k not in self.names]
            if missing or extra:
                raise ValueError(
                    f"{where}: point keys {sorted(point)} do not match the parameters "
                    f"{self.names} (missing {missing}, unexpected {extra})"
                )
            raw = [point[n] for n in self.names]
        elif isinstance(point, Sequence | np.ndarray) and not isinstance(point, str | bytes):
            raw = list(np.asarray(point).ravel())
            if len(raw) != self.dim:
                raise ValueError(
                    f"{where}: point has {len(raw)} values but the space has {self.dim} "
                    f"parameters {self.names}"
                )
        else:
            raise ValueError(f"{where}: a point must be a mapping or a sequence, got {point!r}")
        try:
            return np.asarray([float(v) for v in raw], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: point {point!r} holds a non-numeric value") from exc


def _as_vector(value: Any, label: str) -> np.ndarray:
    try:
        vec = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"search space: '{label}' is not numeric: {value!r}") from exc
    if vec.ndim != 1:
        raise ValueError(f"search space: '{label}' must be one-dimensional, got shape {vec.shape}")
    if not np.all(np.isfinite(vec)):
        raise ValueError(f"search space: '{label}' holds a non-finite value: {vec.tolist()}")
    return vec


def _decimals(resolution: float) -> int:
    """Decimal places that represent multiples of ``resolution`` exactly enough for display."""
    return max(0, min(12, 1 - math.floor(math.log10(resolution)) + 2))


def as_space(obj: Any) -> Space:
    """Accept a Space or any object with names/lower/upper/resolution attributes."""
    if isinstance(obj, Space):
        return obj
    attrs = ("names", "lower", "upper", "resolution")
    missing = [a for a in attrs if not hasattr(obj, a)]
    if missing:
        raise TypeError(f"search space object {obj!r} lacks attribute(s) {missing}")
    return Space(names=list(obj.names), lower=obj.lower, upper=obj.upper, resolution=obj.resolution)
