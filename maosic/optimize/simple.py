"""Model-free peers: random search, grid search and a Latin hypercube design."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from maosic.optimize.base import Optimizer
from maosic.optimize.sampling import latin_hypercube, random_free_indices


class RandomSearch(Optimizer):
    """Uniform random points of the grid, never repeating one (the reviewers' baseline)."""

    name = "random"

    def __init__(self, space: Any, seed: int = 0) -> None:
        super().__init__(space, seed)

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def _propose(self, n: int) -> list[np.ndarray]:
        keys = random_free_indices(self.space, self._rng, self._taken(), n)
        return [np.array(k) for k in keys]


class GridSearch(Optimizer):
    """A coarse full-factorial grid in random order, refined by doubling once it is used up.

    budget: the number of experiments the coarse grid should roughly fill; the number of levels
        per dimension is ``max(2, floor(budget ** (1/d)))`` unless ``levels`` is given.
    levels: explicit number of cell-centred levels per dimension for the first pass.
    """

    name = "grid"

    def __init__(
        self, space: Any, seed: int = 0, budget: int = 250, levels: int | None = None
    ) -> None:
        super().__init__(space, seed)
        if budget < 1:
            raise ValueError(f"grid: budget must be >= 1, got {budget}")
        if levels is not None and levels < 1:
            raise ValueError(f"grid: levels must be >= 1, got {levels}")
        self.budget = int(budget)
        self.levels = None if levels is None else int(levels)
        self._level = 0
        self._queue: list[tuple[int, ...]] = []

    def hyperparameters(self) -> dict[str, Any]:
        return {"budget": self.budget, "levels": self.levels}

    def _first_levels(self) -> int:
        if self.levels is not None:
            return self.levels
        return max(2, int(math.floor(self.budget ** (1.0 / self.space.dim) + 1e-9)))

    def _fill_queue(self) -> None:
        m = self._first_levels() * 2**self._level
        self._level += 1
        axes = []
        for s in self.space.steps:
            # cell centres of m equal cells, in index units
            axes.append(sorted({int(round((j + 0.5) * int(s) / m)) for j in range(m)}))
        grid = list(itertools.product(*axes))
        order = self._rng.permutation(len(grid))
        self._queue = [grid[i] for i in order if self._is_free(grid[i])]

    def _propose(self, n: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        tries = 0
        while len(out) < n and tries < 8:
            while self._queue and len(out) < n:
                key = self._queue.pop(0)
                if self._is_free(key):
                    out.append(np.array(key))
            if len(out) < n:
                self._fill_queue()
                tries += 1
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"level": self._level, "queue": [list(k) for k in self._queue]}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._level = int(extra["level"])
        self._queue = [tuple(int(v) for v in k) for k in extra["queue"]]


class LatinHypercubeSearch(Optimizer):
    """Points of a Latin hypercube design of ``design_size`` points, in design order.

    When the design is used up, a new one (next seed) is started. Points that snap onto a
    taken grid point are replaced by the base class's space-filling step.
    """

    name = "lhs"

    def __init__(self, space: Any, seed: int = 0, design_size: int = 250) -> None:
        super().__init__(space, seed)
        if design_size < 1:
            raise ValueError(f"lhs: design_size must be >= 1, got {design_size}")
        self.design_size = int(design_size)
        self._design_no = 0
        self._position = 0
        self._design: np.ndarray | None = None

    def hyperparameters(self) -> dict[str, Any]:
        return {"design_size": self.design_size}

    def _current(self) -> np.ndarray:
        if self._design is None:
            z = latin_hypercube(self.space.dim, self.design_size, self.seed, self._design_no)
            self._design = self.space.index_of_unit(z)
        return self._design

    def _propose(self, n: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        while len(out) < n:
            design = self._current()
            if self._position >= len(design):
                self._design_no += 1
                self._position = 0
                self._design = None
                continue
            out.append(design[self._position])
            self._position += 1
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"design_no": self._design_no, "position": self._position}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self._design_no = int(extra["design_no"])
        self._position = int(extra["position"])
        self._design = None
