"""SNOBFIT as MAOSIC ran it, through SQSnobFit's request interface, made robust.

SQSnobFit 0.4.5 quirks handled here (see docs/optimizers.md for the measurements):

* Its state is module-level (``_snobfit._im_storage``) and so is its random generator
  (``_gen_utils._randstate``). Each instance keeps its own copy of both; every call swaps them in
  under a process-wide lock and swaps the previous values back afterwards, so two campaigns in one
  process never see each other's state.
* After an exception its state is half-updated. We hand SQSnobFit a deep copy, so a failed call
  leaves this instance's state exactly as before; the points it could not digest stay queued and
  are offered again with the next call. After ``rebuild_after`` failures in a row the internal state
  is rebuilt from the whole history.
* ``LinAlgError: Singular matrix`` in ``_snobqfit`` (grid-snapped neighbours on a line), numpy 2.x
  AttributeErrors (``numpy.NaN``) and anything else are caught; the ask is answered by a
  deterministic fallback: one local perturbation of the best point (it breaks the collinearity that
  made the quadratic fit singular) and space-filling points for the rest. Each is logged and
  recorded in ``recoveries``.
* Starting a job with n+6 or more points and varying uncertainties raises ``NameError: snobnn``;
  we always start the job empty and feed the history as a continuation call, which is SQSnobFit's
  normal path.
* It re-requests measured points. ``replace="nearest"`` (default) puts the nearest unmeasured
  grid point in place of each, as a person running SQSnobFit by hand would, and nothing more:
  this is SNOBFIT as the paper ran it, the reference the project's own methods are compared with.
  ``replace="space_filling"`` hands them to the base class, which puts maximin space-filling
  points in their place; that is a different method (27-42 % of the experiments were such
  points on the 2-D benchmark problems, docs/optimizers.md) and it is the project's variant, not
  the paper's.
* The request array has n+2 columns (point, model value, point type): only the first n are read.

SNOBFIT runs in grid-index coordinates (bounds [0, steps], dx = 1), so its own rounding
(``snobround``) lands exactly on our resolution grid.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import warnings
from typing import Any

import numpy as np

from maosic.optimize.base import Key, Optimizer
from maosic.optimize.sampling import nearest_free_index

log = logging.getLogger(__name__)

try:  # imported lazily-safe: a broken SQSnobFit install must not break `import maosic`
    from SQSnobFit import _gen_utils as _sq_gen
    from SQSnobFit import _snobfit as _sq_snobfit

    SQSNOBFIT_ERROR: str | None = None
except Exception as exc:  # pragma: no cover - depends on the environment
    _sq_gen = None
    _sq_snobfit = None
    SQSNOBFIT_ERROR = f"{type(exc).__name__}: {exc}"

# SQSnobFit keeps its state in module globals; one lock serialises all instances' calls.
_LOCK = threading.Lock()
# SNOBFIT replaces unknown (<= 0) uncertainties by sqrt(machine epsilon); we do the same up front
# because its own replacement skips the case where only row 0 is unknown.
_UNKNOWN_UNCERTAINTY = math.sqrt(np.finfo(float).eps)
_REPLACEMENTS = ("nearest", "space_filling")


class SnobfitOptimizer(Optimizer):
    """SNOBFIT (Huyer & Neumaier 2008) via SQSnobFit's ``snobfit(x, f, config, dx)``.

    p: probability that a global (type-4, unexplored box) point is generated, 0 <= p <= 1.
    min_request: SNOBFIT is asked for at least this many points per call; MAOSIC used 1.
    local_radius: size (fraction of each range) of the fallback local perturbation.
    rebuild_after: consecutive SQSnobFit failures after which its state is rebuilt from history.
    replace: what takes the place of a point SQSnobFit requests again although it is measured or
        pending: ``"nearest"`` the nearest free grid point (the paper's SNOBFIT), or
        ``"space_filling"`` a maximin space-filling point (the project's variant).
    """

    name = "snobfit"

    def __init__(
        self,
        space: Any,
        seed: int = 0,
        p: float = 0.5,
        min_request: int = 1,
        local_radius: float = 0.05,
        rebuild_after: int = 3,
        replace: str = "nearest",
    ) -> None:
        super().__init__(space, seed)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"snobfit: p must be within [0, 1], got {p}")
        if min_request < 1:
            raise ValueError(f"snobfit: min_request must be >= 1, got {min_request}")
        if not 0.0 < local_radius <= 1.0:
            raise ValueError(f"snobfit: local_radius must be within (0, 1], got {local_radius}")
        if rebuild_after < 1:
            raise ValueError(f"snobfit: rebuild_after must be >= 1, got {rebuild_after}")
        if replace not in _REPLACEMENTS:
            raise ValueError(f"snobfit: replace must be one of {_REPLACEMENTS}, got {replace!r}")
        self.replace = str(replace)
        self.p = float(p)
        self.min_request = int(min_request)
        self.local_radius = float(local_radius)
        self.rebuild_after = int(rebuild_after)
        self._storage: Any = None  # SQSnobFit's internal tuple, None until the job starts
        # SQSnobFit draws from a legacy RandomState; ours is seeded from the optimizer's seed.
        self._sq_rand = np.random.RandomState(self.seed).get_state()
        self._unfed: list[int] = []  # indices into the history not yet given to SQSnobFit
        self._failures_in_row = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "p": self.p,
            "min_request": self.min_request,
            "local_radius": self.local_radius,
            "rebuild_after": self.rebuild_after,
            "replace": self.replace,
        }

    # --- optimizer hooks ---------------------------------------------------------------------

    def _on_tell(self, keys: list[Key], losses: list[float | None]) -> None:
        first = len(self._keys) - len(keys)
        self._unfed.extend(range(first, len(self._keys)))

    def _propose(self, n: int) -> list[np.ndarray]:
        if SQSNOBFIT_ERROR is not None:
            raise RuntimeError(f"SQSnobFit cannot be imported ({SQSNOBFIT_ERROR})")
        if self._failures_in_row >= self.rebuild_after:
            self._recover(
                f"rebuild: SQSnobFit state rebuilt from {len(self._keys)} points after "
                f"{self._failures_in_row} failures in a row"
            )
            self._storage = None
            self._unfed = list(range(len(self._keys)))
            self._failures_in_row = 0
        nreq = max(n + len(self._pending), self.min_request)
        try:
            request = self._request(nreq)
        except Exception as exc:  # SQSnobFit fails in many ways; each is recovered the same way
            self._failures_in_row += 1
            self._recover(
                f"exception: SQSnobFit {type(exc).__name__}: {exc}; "
                "local perturbation + space-filling step instead"
            )
            return self._fallback(n)
        self._failures_in_row = 0
        if self.replace == "space_filling":
            return list(request)  # the base class replaces repeats with space-filling points
        return self._nearest_free(request)

    def _nearest_free(self, request: list[np.ndarray]) -> list[np.ndarray]:
        """The request with each point already measured replaced by the nearest free grid point.

        A re-request of a *pending* point is dropped instead: SNOBFIT does not know yet that the
        point is being measured (that is why it asks for ``n`` plus the pending points)."""
        taken = self._taken()
        out: list[np.ndarray] = []
        for row in request:
            key = tuple(int(v) for v in row)
            if key in self._pending:
                continue
            if key in taken:
                near = nearest_free_index(self.space, key, taken)
                shown = None if near is None else self.space.to_point(np.array(near))
                self._recover(
                    f"duplicate: {self.space.to_point(np.array(key))} already taken; "
                    f"nearest free point {shown}"
                )
                if near is None:
                    continue
                key = near
            taken.add(key)
            out.append(np.array(key))
        return out

    # --- SQSnobFit calls ---------------------------------------------------------------------

    def _config(self, nreq: int) -> dict[str, Any]:
        bounds = np.stack([np.zeros(self.space.dim), self.space.steps.astype(float)], axis=1)
        return {"bounds": bounds, "nreq": int(nreq), "p": self.p}

    def _request(self, nreq: int) -> list[np.ndarray]:
        """Feed the unfed observations and return SNOBFIT's requested points (grid indices)."""
        config = self._config(nreq)
        storage = self._storage
        rand = self._sq_rand
        request = None
        if storage is None:
            # a new job always starts empty (see module docstring: NameError snobnn otherwise)
            empty = np.zeros((0, self.space.dim))
            request, storage, rand = _guarded_call(
                empty, np.zeros((0, 2)), config, np.ones(self.space.dim), storage, rand
            )
        if not self._unfed and self._best_index() is None:
            # nothing measured yet: the new job's own space-filling request (SNOBFIT type 5) is
            # the answer; later asks without data get the base class's space-filling points
            self._storage, self._sq_rand = storage, rand
            return [] if request is None else _grid_rows(request, self.space.dim, self.space.steps)
        if self._unfed:
            x = np.array([self._keys[i] for i in self._unfed], dtype=float)
            f = np.array(
                [
                    [
                        np.nan if self._losses[i] is None else self._losses[i],
                        self._uncertainties[i] or _UNKNOWN_UNCERTAINTY,
                    ]
                    for i in self._unfed
                ]
            )
        else:
            # SQSnobFit cannot be called without new points (IndexError); re-offering the best
            # measured point is harmless: SNOBFIT averages duplicates (snobinput).
            best = self._best_index()
            assert best is not None
            x = np.array([self._keys[best]], dtype=float)
            f = np.array([[self._losses[best], self._uncertainties[best] or _UNKNOWN_UNCERTAINTY]])
        request, storage, rand = _guarded_call(x, f, config, None, storage, rand)
        # commit only after every step succeeded
        self._storage = storage
        self._sq_rand = rand
        self._unfed = []
        return _grid_rows(request, self.space.dim, self.space.steps)

    def _best_index(self) -> int | None:
        ok = [(loss, i) for i, loss in enumerate(self._losses) if loss is not None]
        return min(ok)[1] if ok else None

    def _fallback(self, n: int) -> list[np.ndarray]:
        """A local perturbation of the best point, then space-filling points (deterministic)."""
        out: list[np.ndarray] = []
        best = self._best_index()
        if best is not None:
            centre = np.array(self._keys[best])
            radius = np.maximum(1, np.rint(self.local_radius * self.space.steps)).astype(np.int64)
            for _ in range(32):
                step = self._rng.integers(-radius, radius + 1)
                cand = np.clip(centre + step, 0, self.space.steps)
                if np.any(step != 0) and self._is_free(tuple(int(v) for v in cand)):
                    out.append(cand)
                    break
        if len(out) < n:
            out.extend(np.array(k) for k in self._space_filling(n - len(out)))
        return out

    # --- state ---------------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {
            "storage": self._storage,
            "sq_rand": self._sq_rand,
            "unfed": list(self._unfed),
            "failures_in_row": self._failures_in_row,
        }

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._storage = extra["storage"]
        self._sq_rand = extra["sq_rand"]
        self._unfed = [int(i) for i in extra["unfed"]]
        self._failures_in_row = int(extra["failures_in_row"])


def _grid_rows(request: np.ndarray, dim: int, steps: np.ndarray) -> list[np.ndarray]:
    """Grid indices of a SNOBFIT request. Its columns are the n coordinates, the model value and
    the point type (n + 2 columns, not the n + 3 its docstring says); only the first n are read."""
    coords = np.atleast_2d(np.asarray(request, dtype=float))[:, :dim]
    coords = coords[np.all(np.isfinite(coords), axis=1)]
    return list(np.clip(np.rint(coords), 0, steps).astype(np.int64))


def _guarded_call(
    x: np.ndarray,
    f: np.ndarray,
    config: dict[str, Any],
    dx: np.ndarray | None,
    storage: Any,
    rand: Any,
) -> tuple[np.ndarray, Any, Any]:
    """One ``snobfit`` call with this instance's globals swapped in; returns the request and the
    new (storage, random state). The process's previous globals are always put back."""
    with _LOCK:
        saved_storage = _sq_snobfit._im_storage
        saved_rand = _sq_gen._randstate.get_state()
        try:
            _sq_snobfit._im_storage = copy.deepcopy(storage)
            _sq_gen._randstate.set_state(rand)
            with warnings.catch_warnings():
                # divide-by-zero RuntimeWarnings and "could not generate nreq points" are expected
                warnings.simplefilter("ignore")
                request, _, _ = _sq_snobfit.snobfit(x.copy(), f.copy(), config, dx)
            return request, _sq_snobfit._im_storage, _sq_gen._randstate.get_state()
        finally:
            _sq_snobfit._im_storage = saved_storage
            _sq_gen._randstate.set_state(saved_rand)
