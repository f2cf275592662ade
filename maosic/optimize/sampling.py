"""Sampling helpers on the resolution grid: random free points, maximin choice, Latin hypercube."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from scipy.stats import qmc

# Enumerating the grid is the last resort when random draws keep hitting taken points (a nearly
# exhausted small grid); above this size it would cost too much memory and is never needed.
_ENUMERATE_LIMIT = 200_000


def random_free_indices(
    space: Any, rng: np.random.Generator, taken: set[tuple[int, ...]], count: int
) -> list[tuple[int, ...]]:
    """Up to ``count`` distinct random grid index tuples not in ``taken``."""
    out: dict[tuple[int, ...], None] = {}
    for _ in range(4):
        draws = rng.integers(0, space.steps + 1, size=(count, space.dim))
        for row in draws:
            key = tuple(int(v) for v in row)
            if key not in taken:
                out[key] = None
        if out:
            return list(out)[:count]
    if space.grid_size <= _ENUMERATE_LIMIT:
        free = [
            k
            for k in itertools.product(*(range(int(s) + 1) for s in space.steps))
            if k not in taken
        ]
        if free:
            order = rng.permutation(len(free))[:count]
            return [free[i] for i in order]
    return []


def min_distances(cands: np.ndarray, ref: np.ndarray | None) -> np.ndarray:
    """Euclidean distance (unit cube) from each candidate row to its nearest row of ``ref``."""
    if ref is None or len(ref) == 0:
        return np.full(len(cands), np.inf)
    best = np.full(len(cands), np.inf)
    # chunks keep the temporary (chunk, m) matrix small at thousands of points of history
    for start in range(0, len(ref), 2048):
        block = ref[start : start + 2048]
        d2 = ((cands[:, None, :] - block[None, :, :]) ** 2).sum(axis=2)
        best = np.minimum(best, d2.min(axis=1))
    return np.sqrt(best)


def maximin_select(cands: np.ndarray, ref: np.ndarray | None) -> int:
    """Index of the candidate farthest from its nearest reference point (first on ties)."""
    return int(np.argmax(min_distances(cands, ref)))


def latin_hypercube(dim: int, n: int, seed: int, stream: int = 0) -> np.ndarray:
    """``n`` points of a Latin hypercube in [0, 1]^dim (scipy.stats.qmc, centred in cells).

    seed, stream: non-negative integers; each (seed, stream) pair gives an independent design.
    """
    rng = np.random.default_rng([seed, stream])
    return qmc.LatinHypercube(d=dim, scramble=False, seed=rng).random(n)
