"""Optimizers that start from a Latin hypercube, then ask their model (bayes, enn).

The start design is ``initial_size`` points of a seeded Latin hypercube, run in order; a
preloaded history at least that large replaces it. Once the design is used up (or a batch
asks for more), the subclass's ``_model_proposals`` chooses the rest.
"""

from __future__ import annotations

import numpy as np

from maosic.optimize.base import Key, Optimizer
from maosic.optimize.sampling import latin_hypercube


class LatinHypercubeStart(Optimizer):
    _design_position: int  # the next design point to run (set by the subclass's __init__)

    @property
    def initial_size(self) -> int:
        raise NotImplementedError

    def _model_proposals(
        self, n: int, z: np.ndarray, y: np.ndarray, taken: set[Key]
    ) -> list[np.ndarray]:
        raise NotImplementedError

    def _propose(self, n: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        if self._design_position == 0 and sum(v is not None for v in self._losses) >= max(
            2, self.initial_size
        ):
            self._design_position = self.initial_size  # preloaded history replaces the start
        design = self.space.index_of_unit(
            latin_hypercube(self.space.dim, self.initial_size, self.seed)
        )
        seen: set[Key] = set()
        while len(out) < n and self._design_position < len(design):
            key = tuple(int(v) for v in design[self._design_position])
            self._design_position += 1
            if self._is_free(key) and key not in seen:
                out.append(np.array(key))
                seen.add(key)
        z, y = self._observed()
        if len(out) == n or len(y) < 2:
            return out  # the base class fills any rest with space-filling points
        taken = self._taken() | seen
        return out + self._model_proposals(n - len(out), z, y, taken)
