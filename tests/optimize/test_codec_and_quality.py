"""JSON state codec, uncertainty validation and a sanity check that the model-based optimizers
actually optimise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from maosic.optimize import make_optimizer
from maosic.optimize.codec import decode, encode
from maosic.optimize.space import Space
from tests.optimize.conftest import bump_loss


def test_codec_round_trips_exactly() -> None:
    value = (
        np.array([[0.1, np.nan], [np.inf, -np.inf]]),
        np.arange(3, dtype=np.uint32),
        None,
        [1.5, math.nan, {"k": (2, 3)}],
        np.float64(1 / 3),
    )
    back = decode(json.loads(json.dumps(encode(value))))
    assert isinstance(back, tuple) and len(back) == 5
    assert np.array_equal(back[0], value[0], equal_nan=True)
    assert back[1].dtype == np.uint32 and list(back[1]) == [0, 1, 2]
    assert back[2] is None
    assert back[3][0] == 1.5 and math.isnan(back[3][1]) and back[3][2] == {"k": (2, 3)}
    assert back[4] == 1 / 3
    with pytest.raises(TypeError, match="cannot encode"):
        encode(object())


def test_uncertainties_validated(cd_space: Space) -> None:
    opt = make_optimizer("random", cd_space)
    pts = opt.ask(2)
    with pytest.raises(ValueError, match="uncertainty 1 is not finite"):
        opt.tell(pts, [-0.1, -0.2], [0.01, float("nan")])
    with pytest.raises(ValueError, match="2 points but 1 uncertainties"):
        opt.tell(pts, [-0.1, -0.2], [0.01])
    opt.tell(pts, [-0.1, -0.2], [0.0, -1.0])  # non-positive = unknown
    assert opt.state()["observations"][0][2] is None


def test_one_dimensional_space_and_exhaustion() -> None:
    space = Space(["x"], np.array([0.0]), np.array([1.0]), np.array([0.25]))
    opt = make_optimizer("snobfit", space, seed=1)
    got = []
    for _ in range(7):
        pts = opt.ask(1)
        got.extend(pts)
        if pts:
            opt.tell(pts, [(pts[0]["x"] - 0.5) ** 2])
    assert sorted(p["x"] for p in got) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert opt.ask(3) == []


@pytest.mark.parametrize("name", ["snobfit", "bayes", "hybrid", "enn"])
def test_model_based_optimizers_find_the_bump(name: str, cd_space: Space) -> None:
    hp = {"n_candidates": 300} if name != "snobfit" else {}
    opt = make_optimizer(name, cd_space, seed=0, **hp)
    for _ in range(40):
        pts = opt.ask(1)
        opt.tell(pts, [bump_loss(pts[0])])
    best = opt.best()
    assert best is not None and best[1] < -0.95
    assert opt.failures_recovered == sum(r.startswith("exception") for r in opt.recoveries)
