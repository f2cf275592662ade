"""Benchmark problems for scripts/bench_optimizers.py.

Every problem is a reward to maximise (the optimizers minimise ``-reward``). A run "reaches 95%
of the optimum" when the noise-free reward of a measured point is at least
``baseline + 0.95 * (optimum - baseline)``; the baseline is 0 for the non-negative rewards
(|CD| in mdeg, PLQY in %, the deceptive bumps, Hartmann-6) and the median of -Branin over the box
for Branin, whose values are all negative.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware_interface.sim import chemistry  # noqa: E402
from maosic.optimize.space import Space, as_space  # noqa: E402

Point = dict[str, float]


@dataclass(frozen=True)
class Problem:
    name: str
    space: Space
    truth: Callable[[Point], float]
    noisy: Callable[[Point, np.random.Generator], float]
    optimum: float
    baseline: float

    @property
    def threshold(self) -> float:
        return self.baseline + 0.95 * (self.optimum - self.baseline)


# --- simulated lab problems (hardware_interface/sim/chemistry.py) ----------------------------


def _cd_truth(p: Point) -> float:
    return float(chemistry.cspbbr3_cd_truth(p["T"], p["C"]))


def _cd_noisy(p: Point, rng: np.random.Generator) -> float:
    return float(chemistry.cspbbr3_cd_noisy(p["T"], p["C"], rng))


def _plqy_truth(p: Point) -> float:
    return float(chemistry.cs3cu2i5_plqy_truth(p))


def _plqy_noisy(p: Point, rng: np.random.Generator) -> float:
    return float(chemistry.cs3cu2i5_plqy_noisy(p, rng))


# --- a deceptive 2-D problem ---------------------------------------------------------------
# A broad hill (height 0.8, width 0.25) in the middle-left catches early samples; the global
# optimum (height 1.0) is a narrow peak (width 0.05) in the upper right, far from it.
_BROAD_CENTRE = np.array([0.35, 0.40])
_BROAD_HEIGHT, _BROAD_WIDTH = 0.8, 0.25
_NARROW_CENTRE = np.array([0.82, 0.86])
_NARROW_HEIGHT, _NARROW_WIDTH = 1.0, 0.05


def _deceptive_truth(p: Point) -> float:
    x = np.array([p["x1"], p["x2"]])
    broad = _BROAD_HEIGHT * math.exp(-np.sum((x - _BROAD_CENTRE) ** 2) / (2 * _BROAD_WIDTH**2))
    narrow = _NARROW_HEIGHT * math.exp(-np.sum((x - _NARROW_CENTRE) ** 2) / (2 * _NARROW_WIDTH**2))
    return float(broad + narrow)


# --- Branin (x1 in [-5, 10], x2 in [0, 15]); minimum 0.397887 ------------------------------


def _branin(x1: float, x2: float) -> float:
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def _branin_truth(p: Point) -> float:
    return -_branin(p["x1"], p["x2"])


# --- Hartmann-6 on [0, 1]^6; minimum -3.32237 -------------------------------------------------
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H6_NAMES = [f"x{i + 1}" for i in range(6)]


def _hartmann6_truth(p: Point) -> float:
    x = np.array([p[n] for n in _H6_NAMES])
    inner = np.sum(_H6_A * (x - _H6_P) ** 2, axis=1)
    return float(np.sum(_H6_ALPHA * np.exp(-inner)))


def _noise_free(truth: Callable[[Point], float]) -> Callable[[Point, np.random.Generator], float]:
    def noisy(p: Point, rng: np.random.Generator) -> float:
        return truth(p)

    return noisy


def _branin_baseline() -> float:
    rng = np.random.default_rng(12345)
    xs = rng.uniform([-5, 0], [10, 15], size=(20000, 2))
    return float(np.median([-_branin(a, b) for a, b in xs]))


def make_problems() -> dict[str, Problem]:
    unit2 = Space(["x1", "x2"], np.zeros(2), np.ones(2), np.full(2, 0.005))
    plqy_opt = chemistry.CS3CU2I5_OPTIMUM[1]
    return {
        "cspbbr3_cd": Problem(
            "cspbbr3_cd",
            as_space(chemistry.CSPBBR3_SPACE),
            _cd_truth,
            _cd_noisy,
            float(chemistry.CSPBBR3_OPTIMUM[1]),
            0.0,
        ),
        "cs3cu2i5_plqy_5d": Problem(
            "cs3cu2i5_plqy_5d",
            as_space(chemistry.CS3CU2I5_SPACE),
            _plqy_truth,
            _plqy_noisy,
            float(plqy_opt),
            0.0,
        ),
        "deceptive_2d": Problem(
            "deceptive_2d",
            unit2,
            _deceptive_truth,
            _noise_free(_deceptive_truth),
            _deceptive_truth({"x1": _NARROW_CENTRE[0], "x2": _NARROW_CENTRE[1]}),
            0.0,
        ),
        "branin": Problem(
            "branin",
            Space(["x1", "x2"], np.array([-5.0, 0.0]), np.array([10.0, 15.0]), np.full(2, 0.05)),
            _branin_truth,
            _noise_free(_branin_truth),
            -0.397887,
            _branin_baseline(),
        ),
        "hartmann6": Problem(
            "hartmann6",
            Space(_H6_NAMES, np.zeros(6), np.ones(6), np.full(6, 0.01)),
            _hartmann6_truth,
            _noise_free(_hartmann6_truth),
            3.32237,
            0.0,
        ),
    }


def describe(problems: dict[str, Problem]) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "dim": p.space.dim,
            "optimum": p.optimum,
            "baseline": p.baseline,
            "threshold": p.threshold,
        }
        for p in problems.values()
    ]
