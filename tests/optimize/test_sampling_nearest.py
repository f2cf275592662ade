"""nearest_free_index: the nearest unmeasured grid point, in the unit cube's metric."""

from __future__ import annotations

import numpy as np

from maosic.optimize.sampling import nearest_free_index
from maosic.optimize.space import Space


def test_nearest_counts_a_fine_step_as_shorter() -> None:
    # x has 10 steps, y 100: one y step is a tenth of an x step in the unit cube
    space = Space(["x", "y"], np.zeros(2), np.ones(2), np.array([0.1, 0.01]))
    taken = {(5, 50)}
    got = nearest_free_index(space, (5, 50), taken)
    assert got in {(5, 49), (5, 51)}
    # block the whole column near y = 50: the next y steps still beat one x step
    taken |= {(5, y) for y in range(45, 56)}
    assert nearest_free_index(space, (5, 50), taken) in {(5, 44), (5, 56)}


def test_exhausted_grid_gives_none() -> None:
    space = Space(["x"], np.zeros(1), np.ones(1), np.array([0.25]))
    taken = {(i,) for i in range(5)}
    assert nearest_free_index(space, (2,), taken) is None
    assert nearest_free_index(space, (0,), taken - {(4,)}) == (4,)
