from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from maosic.optimize.space import Space, as_space


def test_grid_size_and_conversions(cd_space: Space) -> None:
    assert list(cd_space.steps) == [180, 100]
    assert cd_space.grid_size == 181 * 101
    assert cd_space.to_point(np.array([80, 60])) == {"T": 130.0, "C": 0.8}
    assert list(cd_space.index_of_point({"T": 130.0, "C": 0.8}, "x")) == [80, 60]
    # a sequence in names order works too; off-grid values snap to the nearest grid point
    assert list(cd_space.index_of_point([130.2, 0.804], "x")) == [80, 60]


@pytest.mark.parametrize(
    ("lower", "upper", "resolution", "message"),
    [
        ([180.0, 0.2], [90.0, 1.2], [0.5, 0.01], "lower bound 180.0 >= upper bound 90.0"),
        ([90.0, 0.2], [180.0, 0.2], [0.5, 0.01], "'C' has lower bound 0.2 >= upper"),
        ([90.0, 0.2], [180.0, 1.2], [0.0, 0.01], "resolution 0.0 <= 0"),
        ([90.0, 0.2], [180.0, 1.2], [0.7, 0.01], "does not divide"),
        ([90.0, 0.2], [180.0, 1.2], [100.0, 0.01], "does not divide"),
        ([90.0], [180.0, 1.2], [0.5, 0.01], "'lower' has 1 values"),
    ],
)
def test_bad_space_is_a_clear_error(lower, upper, resolution, message) -> None:
    with pytest.raises(ValueError, match=message):
        Space(["T", "C"], np.array(lower), np.array(upper), np.array(resolution))


def test_nonfinite_and_duplicate_names_rejected() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        Space(["a"], np.array([np.nan]), np.array([1.0]), np.array([0.1]))
    with pytest.raises(ValueError, match="duplicate"):
        Space(["a", "a"], np.zeros(2), np.ones(2), np.full(2, 0.1))


def test_point_errors_name_the_problem(cd_space: Space) -> None:
    with pytest.raises(ValueError, match="outside its bounds"):
        cd_space.index_of_point({"T": 200.0, "C": 0.5}, "tell: point 0")
    with pytest.raises(ValueError, match="missing \\['C'\\]"):
        cd_space.index_of_point({"T": 100.0}, "tell: point 0")
    with pytest.raises(ValueError, match="has 3 values but the space has 2"):
        cd_space.index_of_point([100.0, 0.5, 1.0], "tell: point 0")


def test_duck_typed_space_and_round_trip(cd_space: Space) -> None:
    duck = SimpleNamespace(
        names=("T", "C"), lower=(90.0, 0.2), upper=(180.0, 1.2), resolution=(0.5, 0.01)
    )
    space = as_space(duck)
    assert space == cd_space
    assert Space.from_dict(space.to_dict()) == cd_space
    with pytest.raises(TypeError, match="lacks attribute"):
        as_space(SimpleNamespace(names=["a"]))
