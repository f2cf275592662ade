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


# Largest box of grid offsets examined at once by nearest_free_index (beyond it the search gives
# up: only a nearly exhausted high-dimensional grid would get there).
_NEAREST_BOX_LIMIT = 400_000


def nearest_free_index(
    space: Any, key: tuple[int, ...], taken: set[tuple[int, ...]]
) -> tuple[int, ...] | None:
    """The free grid point nearest to ``key`` (Euclidean distance in the unit cube, so one step
    of a finely resolved parameter counts less than one of a coarse one); ties go to the first
    in lexicographic order of the grid indices. None when none is found within the search limit."""
    steps = np.asarray(space.steps, dtype=np.int64)
    centre = np.asarray(key, dtype=np.int64)
    unit_step = 1.0 / np.maximum(steps, 1)
    radius = float(np.min(unit_step[steps > 0])) if np.any(steps > 0) else 1.0
    while True:
        # every grid point within ``radius`` lies in this box of offsets
        reach = np.minimum(np.floor(radius / unit_step + 1e-9).astype(np.int64), steps)
        lo = np.maximum(centre - reach, 0)
        hi = np.minimum(centre + reach, steps)
        size = int(np.prod(hi - lo + 1))
        if size > _NEAREST_BOX_LIMIT:
            return None
        axes = [np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(steps))
        dist = np.sqrt((((grid - centre) * unit_step) ** 2).sum(axis=1))
        for i in np.argsort(dist, kind="stable"):
            if dist[i] > radius + 1e-12:
                break
            cand = tuple(int(v) for v in grid[i])
            if cand not in taken:
                return cand
        if np.all(reach >= steps):
            return None  # the whole grid was examined
        radius *= 2.0


# Local candidates around the best points (bayes, enn): at these scales of the unit box, plus one
# and a half grid steps, LOCAL_PER_SCALE draws around each of the LOCAL_TOP best.
LOCAL_SCALES = (0.01, 0.03, 0.1)
LOCAL_TOP = 5
LOCAL_PER_SCALE = 40


def best_half_subset(
    z: np.ndarray, y: np.ndarray, limit: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` observations (losses ``y``): the best half and a seeded random rest,
    so that a model fitted on them stays cheap and still sees the whole space."""
    if len(y) <= limit:
        return z, y
    order = np.argsort(y, kind="stable")
    keep = order[: limit // 2]
    extra = rng.choice(order[limit // 2 :], limit - len(keep), replace=False)
    sel = np.concatenate([keep, np.sort(extra)])
    return z[sel], y[sel]


def local_and_random_candidates(
    space: Any,
    rng: np.random.Generator,
    z: np.ndarray,
    y: np.ndarray,
    taken: set[tuple[int, ...]],
    n_random: int,
) -> list[tuple[int, ...]]:
    """Free grid points to score with an acquisition: ``n_random`` anywhere, and Gaussian
    clouds around the best points down to one grid step (fine local refinement)."""
    keys: dict[tuple[int, ...], None] = dict.fromkeys(
        random_free_indices(space, rng, taken, n_random)
    )
    top = z[np.argsort(y, kind="stable")[:LOCAL_TOP]]
    one_step = 1.0 / np.maximum(space.steps, 1)
    widths = [one_step * 1.5] + [np.full(space.dim, s) for s in LOCAL_SCALES]
    for width in widths:
        noise = rng.normal(0.0, 1.0, size=(len(top), LOCAL_PER_SCALE, space.dim))
        raw = (top[:, None, :] + noise * width).reshape(-1, space.dim)
        for row in space.index_of_unit(np.clip(raw, 0.0, 1.0)):
            key = tuple(int(v) for v in row)
            if key not in taken:
                keys[key] = None
    return list(keys)
