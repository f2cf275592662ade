"""The ask/tell interface every optimizer implements.

Conventions shared by all optimizers:

* Losses are minimised (a campaign that maximises |CD| tells ``-|CD|``).
* ``ask(n)`` returns up to ``n`` points on the resolution grid, inside the bounds, never a point
  already measured nor one asked and still pending. Fewer than ``n`` (possibly none) come back
  only when the grid has fewer free points left.
* A failed experiment is told with loss ``None``. It counts as measured (it is never asked again)
  but no model is trained on a made-up value for it: model-based optimizers leave it out, SNOBFIT
  receives NaN, which SNOBFIT itself replaces by a value from the point's neighbours.
* NaN or infinite losses raise ValueError: a NaN is ambiguous (failed or a bug upstream?), so the
  caller must say which.
* ``state()`` is plain JSON; ``restore(state)`` rebuilds an optimizer that makes exactly the same
  future asks as the original would have (all randomness comes from a seeded generator whose
  state is part of ``state()``).
* Any exception raised inside an optimizer's proposal step is caught, logged and recorded in
  ``recoveries``; a deterministic space-filling step takes its place, so a numerical failure never
  stops a campaign.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from maosic.optimize.codec import decode, encode
from maosic.optimize.sampling import maximin_select, random_free_indices
from maosic.optimize.space import Space, as_space

log = logging.getLogger(__name__)

STATE_FORMAT = "maosic.optimizer/1"
Key = tuple[int, ...]


class Optimizer(ABC):
    """Abstract ask/tell optimizer over a :class:`~maosic.optimize.space.Space` grid."""

    name: ClassVar[str] = ""
    # Points per ask when the configuration's ``nreq`` is 0 ("the optimizer's own batch size").
    # All are 1: the loop runs one experiment at a time, so every later point of a batch is
    # chosen knowing less than a fresh ask would; a larger default needs a reason (e.g. a
    # design that is only space-filling as a whole).
    default_batch: ClassVar[int] = 1
    # True when the optimizer schedules over the campaign's length (its ``budget`` option, in
    # experiments told or asked, history included): the campaign then fills it in when the
    # configuration does not (maosic/campaign.py).
    wants_budget: ClassVar[bool] = False

    def __init__(self, space: Any, seed: int = 0) -> None:
        self.space: Space = as_space(space)
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"optimizer seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        self._keys: list[Key] = []
        self._losses: list[float | None] = []
        self._uncertainties: list[float | None] = []
        self._measured: set[Key] = set()
        self._pending: dict[Key, None] = {}
        self.recoveries: list[str] = []

    # --- what subclasses provide ---------------------------------------------------------------

    @abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON values) that rebuild this optimizer."""

    @abstractmethod
    def _propose(self, n: int) -> list[np.ndarray]:
        """Up to ``n`` grid-index vectors in order of preference; the base class drops any that
        are taken and fills the rest with space-filling points."""

    def _on_tell(self, keys: list[Key], losses: list[float | None]) -> None:  # noqa: B027
        """Hook run after new observations are stored (default: nothing to update)."""

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:  # noqa: B027
        """Inverse of :meth:`_extra_state` (default: nothing to load)."""

    # --- public interface ------------------------------------------------------------------------

    def ask(self, n: int = 1) -> list[dict[str, float]]:
        """Return up to ``n`` new points ``{name: value}`` (values in the parameters' units)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"ask: n must be a positive integer, got {n!r}")
        n = int(min(n, self.space.grid_size - len(self._measured) - len(self._pending)))
        if n <= 0:
            return []
        try:
            proposals = self._propose(n)
        except Exception as exc:  # a numerical failure must never stop a campaign
            self._recover(f"exception: {type(exc).__name__}: {exc}; space-filling step instead")
            proposals = []
        chosen: list[Key] = []
        seen: set[Key] = set()
        for idx in proposals:
            if len(chosen) == n:
                break
            key = tuple(int(v) for v in np.asarray(idx).ravel())
            if len(key) != self.space.dim or any(
                k < 0 or k > s for k, s in zip(key, self.space.steps, strict=True)
            ):
                self._recover(f"invalid: proposal {key} outside the grid; replaced")
                continue
            if key in self._measured or key in self._pending or key in seen:
                self._recover(f"duplicate: {self.space.to_point(np.array(key))} already taken")
                continue
            chosen.append(key)
            seen.add(key)
        if len(chosen) < n:
            chosen.extend(self._space_filling(n - len(chosen), extra_taken=seen))
        for key in chosen:
            self._pending[key] = None
        return [self.space.to_point(np.array(key)) for key in chosen]

    def tell(
        self,
        points: Sequence[Any],
        losses: Sequence[float | None],
        uncertainties: Sequence[float | None] | None = None,
    ) -> None:
        """Report results. ``losses[i] is None`` means experiment ``i`` failed.

        uncertainties: optional standard deviations of the losses (same units as the loss);
        None or a non-positive value means unknown.
        """
        keys, clean_losses, clean_unc = self._validate("tell", points, losses, uncertainties)
        self._store(keys, clean_losses, clean_unc)

    def preload(
        self,
        points: Sequence[Any],
        losses: Sequence[float | None],
        uncertainties: Sequence[float | None] | None = None,
    ) -> None:
        """Load history from earlier experiments of the same reaction (LOAD_REACTION_HISTORY).

        Same treatment as :meth:`tell`; off-grid points are snapped to the nearest grid point.
        """
        keys, clean_losses, clean_unc = self._validate("preload", points, losses, uncertainties)
        self._store(keys, clean_losses, clean_unc)

    def knows(self, point: Any) -> bool:
        """Whether ``point`` (snapped to the grid) has been told already: a replicate of it is
        then not told again."""
        key = tuple(int(v) for v in self.space.index_of_point(point, "knows"))
        return key in self._measured

    def state(self) -> dict[str, Any]:
        """The whole optimizer as JSON-serialisable data (see :meth:`restore`)."""
        return {
            "format": STATE_FORMAT,
            "optimizer": self.name,
            "space": self.space.to_dict(),
            "seed": self.seed,
            "hyperparameters": self.hyperparameters(),
            "observations": [
                [list(k), loss, unc]
                for k, loss, unc in zip(self._keys, self._losses, self._uncertainties, strict=True)
            ],
            "pending": [list(k) for k in self._pending],
            "rng": self._rng.bit_generator.state,
            "recoveries": list(self.recoveries),
            "extra": encode(self._extra_state()),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Optimizer:
        """Rebuild an optimizer from :meth:`state`; future asks equal the original's."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"restore: not an optimizer state of format {STATE_FORMAT!r}")
        if cls is Optimizer:
            from maosic.optimize.registry import optimizer_class

            target = optimizer_class(state["optimizer"])
        else:
            target = cls
            if state["optimizer"] != cls.name:
                raise ValueError(
                    f"restore: state is for optimizer {state['optimizer']!r}, not {cls.name!r}"
                )
        opt = target(
            Space.from_dict(state["space"]), seed=state["seed"], **state["hyperparameters"]
        )
        for key, loss, unc in state["observations"]:
            k = tuple(int(v) for v in key)
            opt._keys.append(k)
            opt._losses.append(None if loss is None else float(loss))
            opt._uncertainties.append(None if unc is None else float(unc))
            opt._measured.add(k)
        opt._pending = {tuple(int(v) for v in key): None for key in state["pending"]}
        opt._rng.bit_generator.state = state["rng"]
        opt.recoveries = list(state["recoveries"])
        opt._load_extra_state(decode(state["extra"]))
        return opt

    # --- read-only views --------------------------------------------------------------------

    @property
    def n_told(self) -> int:
        return len(self._keys)

    @property
    def pending(self) -> list[dict[str, float]]:
        return [self.space.to_point(np.array(k)) for k in self._pending]

    @property
    def failures_recovered(self) -> int:
        """Number of exceptions inside the optimizer that were caught and worked around."""
        return sum(1 for r in self.recoveries if r.startswith("exception"))

    def best(self) -> tuple[dict[str, float], float] | None:
        """The measured point with the lowest loss and that loss, or None before any success."""
        ok = [
            (loss, k) for k, loss in zip(self._keys, self._losses, strict=True) if loss is not None
        ]
        if not ok:
            return None
        loss, key = min(ok, key=lambda t: t[0])
        return self.space.to_point(np.array(key)), loss

    # --- helpers for subclasses --------------------------------------------------------------

    def _observed(self) -> tuple[np.ndarray, np.ndarray]:
        """Successful observations as (unit-cube coordinates (m, d), losses (m,))."""
        rows = [
            (k, loss) for k, loss in zip(self._keys, self._losses, strict=True) if loss is not None
        ]
        if not rows:
            return np.zeros((0, self.space.dim)), np.zeros(0)
        keys = np.array([k for k, _ in rows], dtype=float)
        return self.space.unit(keys), np.array([loss for _, loss in rows], dtype=float)

    def _taken(self) -> set[Key]:
        return self._measured | set(self._pending)

    def _is_free(self, key: Key) -> bool:
        return key not in self._measured and key not in self._pending

    def _space_filling(self, k: int, extra_taken: set[Key] | None = None) -> list[Key]:
        """``k`` free grid points far from everything taken (deterministic under the seed)."""
        taken = self._taken() | (extra_taken or set())
        out: list[Key] = []
        for _ in range(k):
            cands = random_free_indices(self.space, self._rng, taken, 256)
            if not cands:
                break
            taken_unit = self.space.unit(np.array(sorted(taken), dtype=float)) if taken else None
            pick = maximin_select(self.space.unit(np.array(cands, dtype=float)), taken_unit)
            out.append(cands[pick])
            taken.add(cands[pick])
        return out

    def _recover(self, message: str) -> None:
        self.recoveries.append(message)
        level = logging.WARNING if message.startswith("exception") else logging.DEBUG
        log.log(level, "%s (seed %d, %d told): %s", self.name, self.seed, self.n_told, message)

    # --- internals -------------------------------------------------------------------------

    def _validate(
        self,
        where: str,
        points: Sequence[Any],
        losses: Sequence[float | None],
        uncertainties: Sequence[float | None] | None,
    ) -> tuple[list[Key], list[float | None], list[float | None]]:
        if isinstance(points, dict):
            raise ValueError(f"{where}: 'points' must be a list of points, not a single mapping")
        points = list(points)
        losses = list(np.asarray(losses, dtype=object).ravel()) if losses is not None else []
        if len(points) != len(losses):
            raise ValueError(f"{where}: {len(points)} points but {len(losses)} losses")
        if uncertainties is None:
            uncertainties = [None] * len(points)
        uncertainties = list(uncertainties)
        if len(uncertainties) != len(points):
            raise ValueError(
                f"{where}: {len(points)} points but {len(uncertainties)} uncertainties"
            )
        keys: list[Key] = []
        clean_losses: list[float | None] = []
        clean_unc: list[float | None] = []
        for i, (p, loss, unc) in enumerate(zip(points, losses, uncertainties, strict=True)):
            keys.append(tuple(int(v) for v in self.space.index_of_point(p, f"{where}: point {i}")))
            clean_losses.append(_clean_loss(loss, f"{where}: loss {i}"))
            clean_unc.append(_clean_uncertainty(unc, f"{where}: uncertainty {i}"))
        return keys, clean_losses, clean_unc

    def _store(
        self, keys: list[Key], losses: list[float | None], uncertainties: list[float | None]
    ) -> None:
        for key, loss, unc in zip(keys, losses, uncertainties, strict=True):
            self._pending.pop(key, None)
            self._measured.add(key)
            self._keys.append(key)
            self._losses.append(loss)
            self._uncertainties.append(unc)
        self._on_tell(keys, losses)


def _clean_loss(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} is not a number: {value!r}") from exc
    if math.isnan(f):
        raise ValueError(f"{where} is NaN; tell a failed experiment with loss None")
    if math.isinf(f):
        raise ValueError(f"{where} is infinite ({f}); losses must be finite numbers")
    return f


def _clean_uncertainty(value: Any, where: str) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} is not a number: {value!r}") from exc
    if not math.isfinite(f):
        raise ValueError(f"{where} is not finite ({f})")
    return f if f > 0 else None
