"""Points people choose: given lists, generated designs, proposals and replicates.

The papers' reviewers asked whether an optimizer beats random or a person, and whether an
optimum reproduces. Both need experiments the optimizer did not choose:

* a request that runs a given list of points (a table, a CSV file) or a generated design
  (full factorial; one factor at a time around a centre), optimizer name ``points``;
* a person proposing the next points of a running request beside the optimizer's suggestion;
* replicates: the same conditions again, interleaved with random conditions as the fluidic-lab
  papers' reproducibility runs were (baseline, random, baseline, ...), and the k replicates a
  request runs to confirm its best before it stops on its goal.

All of them are rows of ``planned_points``, taken in ``position`` order before the optimizer is
asked. A point is marked used in the transaction that stores its experiment's result, so a point
cut off by a crash runs again. Every point is checked against the search space here, before it
reaches the queue: a caller's numbers are hostile until they are on the grid.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maosic.db.models import PlannedPoint
from maosic.optimize.space import Space, as_space

# The optimizer name of a request that runs only its planned points.
POINTS = "points"
MAX_POINTS = 1000  # points in one list or design: a long campaign, not an accident
MAX_LEVELS = 21  # levels per factor of a generated design
MAX_CSV_BYTES = 200_000
DESIGNS = ("full_factorial", "one_factor_at_a_time")
# Chosen-by labels (experiments.chosen_by, planned_points.chosen_by).
CONFIRM = "confirm"
INTERLEAVED = "random (between replicates)"


class PlanError(ValueError):
    """A point, list or design that cannot be run; the message names what and where."""


# -- checking points --------------------------------------------------------------------------
def check_point(space: Space, point: Any, where: str) -> dict[str, float]:
    """``point`` as a grid point of ``space`` (every varied parameter given, numbers, inside the
    bounds; snapped to the grid's resolution), or PlanError naming the parameter and ``where``."""
    space = as_space(space)  # a configuration's SearchSpace or an optimizer's Space
    if not isinstance(point, Mapping):
        raise PlanError(f"{where}: a point must be an object {{name: value}}, got {point!r:.60}")
    clean: dict[str, Any] = {}
    for name, value in point.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PlanError(f"{where}: {name!s:.40} must be a number, got {value!r:.40}")
        if not math.isfinite(value):
            raise PlanError(f"{where}: {name!s:.40} must be a finite number, got {value!r}")
        clean[name] = value
    try:
        return space.to_point(space.index_of_point(clean, where))
    except ValueError as exc:
        raise PlanError(str(exc)) from None


def check_points(space: Space, points: Any, where: str = "points") -> list[dict[str, float]]:
    """A whole list checked; at least one point and at most MAX_POINTS."""
    space = as_space(space)  # a configuration's SearchSpace or an optimizer's Space
    if not isinstance(points, Sequence) or isinstance(points, str | bytes):
        raise PlanError(f"{where}: must be a list of points")
    if not points:
        raise PlanError(f"{where}: the list is empty")
    if len(points) > MAX_POINTS:
        raise PlanError(f"{where}: at most {MAX_POINTS} points, got {len(points)}")
    return [check_point(space, p, f"{where} row {i + 1}") for i, p in enumerate(points)]


def rows_from_csv(text: str) -> list[dict[str, float]]:
    """Rows of CSV text as ``{column: number}``: a header line, then one point per line. The
    columns are not checked against a search space here (:func:`points_from_csv` does)."""
    if len(text.encode("utf-8", "replace")) > MAX_CSV_BYTES:
        raise PlanError(f"CSV: at most {MAX_CSV_BYTES // 1000} kB")
    rows = [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff"))) if any(c.strip() for c in r)]
    if not rows:
        raise PlanError("CSV: no header line")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or not all(header):
        raise PlanError(f"CSV line 1: the column names must be distinct and not empty: {header}")
    if len(rows) - 1 > MAX_POINTS:
        raise PlanError(f"CSV: at most {MAX_POINTS} points, got {len(rows) - 1}")
    points = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise PlanError(f"CSV line {line}: {len(row)} values for {len(header)} columns")
        point: dict[str, float] = {}
        for name, cell in zip(header, row, strict=True):
            try:
                point[name] = float(cell)
            except ValueError:
                raise PlanError(
                    f"CSV line {line}, column {name}: {cell!r:.30} is not a number"
                ) from None
        points.append(point)
    return points


def points_from_csv(text: str, space: Space) -> list[dict[str, float]]:
    """Points from CSV text: a header naming the varied parameters (any order; extra columns
    such as a note are refused so a typo in a name is not silently dropped), one row each."""
    space = as_space(space)  # a configuration's SearchSpace or an optimizer's Space
    points = rows_from_csv(text)
    header = list(points[0]) if points else []
    unknown = [h for h in header if h not in space.names]
    missing = [n for n in space.names if n not in header]
    if unknown or missing:
        raise PlanError(
            f"CSV line 1: the columns must be the varied parameters {space.names}"
            + (f"; unknown {unknown}" if unknown else "")
            + (f"; missing {missing}" if missing else "")
        )
    return check_points(space, points, "CSV")


# -- generated designs ------------------------------------------------------------------------
def _levels(space: Space, i: int, levels: int) -> list[float]:
    """``levels`` evenly spaced values of parameter i over its bounds, on its grid."""
    lo, hi = float(space.lower[i]), float(space.upper[i])
    values = np.linspace(lo, hi, levels) if hi > lo else np.array([lo])
    return [float(v) for v in values]


def design(space: Space, spec: Any) -> list[dict[str, float]]:
    """The points of a design ``{"kind": "full_factorial" | "one_factor_at_a_time",
    "levels": L, "center": {...}}``.

    full_factorial: every combination of L levels per parameter (L^d points).
    one_factor_at_a_time: the centre (default: the middle of the box), then each parameter
    through its L levels with the others held at the centre, the centre not repeated.
    """
    space = as_space(space)  # a configuration's SearchSpace or an optimizer's Space
    if not isinstance(spec, Mapping):
        raise PlanError("design: must be an object {kind, levels}")
    kind = spec.get("kind")
    if kind not in DESIGNS:
        raise PlanError(f"design.kind: choose one of {list(DESIGNS)}, got {kind!r:.40}")
    levels = spec.get("levels", 3)
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= MAX_LEVELS:
        raise PlanError(f"design.levels: a whole number from 2 to {MAX_LEVELS}, got {levels!r}")
    grids = [_levels(space, i, levels) for i in range(space.dim)]
    if kind == "full_factorial":
        count = math.prod(len(g) for g in grids)
        if count > MAX_POINTS:
            raise PlanError(
                f"design: {levels} levels of {space.dim} parameters make {count} points; at "
                f"most {MAX_POINTS} (use fewer levels or one factor at a time)"
            )
        raw = [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*grids)]
    else:
        middle = {
            n: (float(lo) + float(hi)) / 2
            for n, lo, hi in zip(space.names, space.lower, space.upper, strict=True)
        }
        given = spec.get("center")
        center = (
            check_point(space, given, "design.center")
            if given is not None
            else check_point(space, middle, "design.center")
        )
        raw = [center]
        for name, grid in zip(space.names, grids, strict=True):
            raw.extend({**center, name: v} for v in grid)
    points = check_points(space, raw, "design")
    unique: dict[tuple, dict[str, float]] = {}
    for p in points:  # snapping to the grid can make two levels one point
        unique.setdefault(tuple(sorted(p.items())), p)
    return list(unique.values())


def interleaved_replicates(
    space: Space, point: Mapping[str, float], n: int, seed: int = 0, between: bool = True
) -> list[tuple[dict[str, float], bool]]:
    """``n`` runs of ``point`` as (params, is_replicate) pairs; with ``between``, a random
    condition of the space between each two (the fluidic-lab papers' reproducibility runs),
    so a drift in the lab shows as scatter rather than hiding in a row of identical runs."""
    space = as_space(space)  # a configuration's SearchSpace or an optimizer's Space
    rng = np.random.default_rng(seed)
    out: list[tuple[dict[str, float], bool]] = []
    for i in range(n):
        if i and between:
            index = np.array([rng.integers(0, int(s) + 1) for s in space.steps])
            out.append((space.to_point(index), False))
        out.append((dict(point), True))
    return out


# -- the planned_points table -----------------------------------------------------------------
def add(
    session: Session,
    request_id: int,
    points: Iterable[dict[str, float]],
    chosen_by: str,
    replicate_of: int | None = None,
) -> int:
    """Append points to a request's plan (after those already planned); how many."""
    last = session.scalar(
        select(func.max(PlannedPoint.position)).where(PlannedPoint.request_id == request_id)
    )
    n = 0
    for n, params in enumerate(points, start=1):
        session.add(
            PlannedPoint(
                request_id=request_id,
                position=(last or 0) + n,
                params=params,
                chosen_by=chosen_by[:80],
                replicate_of=replicate_of,
            )
        )
    session.flush()
    return n


def pending(session: Session, request_id: int) -> list[PlannedPoint]:
    """A request's planned points not yet run, in order."""
    return list(
        session.scalars(
            select(PlannedPoint)
            .where(PlannedPoint.request_id == request_id, PlannedPoint.experiment_id.is_(None))
            .order_by(PlannedPoint.position)
        )
    )


def describe(planned: PlannedPoint) -> dict[str, Any]:
    return {
        "position": planned.position,
        "params": planned.params,
        "chosen_by": planned.chosen_by,
        "replicate_of": planned.replicate_of,
    }


def replicate_stats(rewards: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation and coefficient of variation (in %) of replicates'
    rewards; deviation and CV None below two values, CV None when the mean is 0."""
    values = [float(r) for r in rewards if r is not None and math.isfinite(float(r))]
    n = len(values)
    mean = sum(values) / n if n else None
    std = float(np.std(values, ddof=1)) if n >= 2 else None
    cv = 100.0 * std / abs(mean) if std is not None and mean else None
    return {"n": n, "mean": mean, "std": std, "cv_percent": cv}
