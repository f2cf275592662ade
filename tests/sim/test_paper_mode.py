"""The CsPbBr3 twin's realism settings (issue 22): "ideal" as the tests use it, "paper" with the
noise, drift and failures of a real lab."""

from __future__ import annotations

import numpy as np
import pytest

from hardware_interface.sim import chemistry as ch

OPT_T, OPT_C = ch.CSPBBR3_OPTIMUM[0]


def _series(realism: str, n: int, seed: int = 0) -> np.ndarray:
    lab = ch.CsPbBr3Lab(realism, np.random.default_rng(seed))
    return np.array([lab.measure(OPT_T, OPT_C) for _ in range(n)])


def test_ideal_matches_the_default_noise() -> None:
    ideal = _series("ideal", 3000)
    rng = np.random.default_rng(1)
    default = np.array([ch.cspbbr3_cd_noisy(OPT_T, OPT_C, rng) for _ in range(3000)])
    assert ideal.mean() == pytest.approx(default.mean(), abs=0.005)
    assert ideal.std() == pytest.approx(default.std(), rel=0.15)
    assert ideal.std() < 0.05


def test_paper_mode_scatters_drifts_and_fails() -> None:
    realism = ch.CSPBBR3_REALISM["paper"]
    values = _series("paper", 3000, seed=3)
    # failed syntheses read the noise floor, far below the product
    failed = values < 0.4
    assert failed.mean() == pytest.approx(realism.failure_rate, abs=0.015)
    good = values[~failed]
    # run-to-run variation and CD noise: ~ sqrt(5 %^2 + (0.1 mdeg)^2) within a day
    per_day = good.reshape(-1)[: (good.size // 100) * 100].reshape(-1, 100)
    assert 0.07 < float(np.median(per_day.std(axis=1))) < 0.16
    # the day-to-day drift moves every measurement of a day together
    lab = ch.CsPbBr3Lab("paper", np.random.default_rng(5))
    days = []
    for _ in range(12):
        day = [lab.measure(OPT_T, OPT_C) for _ in range(realism.loops_per_day)]
        days.append(np.median(day))
    assert lab.day == 12
    assert np.std(days) > 0.025  # without drift the medians of 120 readings scatter ~0.013


def test_realism_is_deterministic_and_checked() -> None:
    assert np.array_equal(_series("paper", 50, seed=9), _series("paper", 50, seed=9))
    with pytest.raises(ValueError, match="unknown realism"):
        ch.CsPbBr3Lab("lab-like", np.random.default_rng(0))
    with pytest.raises(ValueError, match="failure_rate"):
        ch.CsPbBr3Realism(failure_rate=1.0)
    with pytest.raises(ValueError, match="cd_noise_mdeg"):
        ch.CsPbBr3Realism(cd_noise_mdeg=-0.1)
    with pytest.raises(ValueError, match="loops_per_day"):
        ch.CsPbBr3Realism(loops_per_day=-1)
