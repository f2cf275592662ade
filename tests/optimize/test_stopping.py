from __future__ import annotations

import pytest

from maosic.optimize.stopping import Stopper, StopReason


def test_budget() -> None:
    s = Stopper(max_expts=3)
    assert s.check([-0.1, -0.2]) is None
    assert s.check([-0.1, -0.2, None]) is StopReason.MAX_EXPTS


def test_target_reward_is_minus_loss() -> None:
    s = Stopper.from_reward(max_expts=100, target_reward=0.9)
    assert s.check([-0.5, -0.89]) is None
    assert s.check([-0.5, -0.91]) is StopReason.TARGET


def test_no_improvement_over_n() -> None:
    s = Stopper(max_expts=100, patience=3, min_improvement=0.01)
    assert s.check([-1.0, -0.5, -0.5]) is None
    assert s.check([-1.0, -0.5, -0.5, -1.005]) is StopReason.NO_IMPROVEMENT
    assert s.check([-1.0, -0.5, -0.5, -1.02]) is None
    assert s.check([-1.0, None, None, None]) is StopReason.NO_IMPROVEMENT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_expts": 0},
        {"max_expts": 5, "patience": 0},
        {"max_expts": 5, "target_loss": float("nan")},
    ],
)
def test_bad_criteria(kwargs) -> None:
    with pytest.raises(ValueError, match="stopping"):
        Stopper(**kwargs)
