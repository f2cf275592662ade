"""Contract tests run against every registered optimizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maosic.optimize import OPTIMIZERS, Optimizer, make_optimizer, restore_optimizer
from maosic.optimize.space import Space
from tests.optimize.conftest import bump_loss

# GP-based optimizers get small candidate sets so the default test run stays fast
FAST = {"bayes": {"n_candidates": 200}, "hybrid": {"n_candidates": 200}}


def build(name: str, space: Space, seed: int = 0) -> Optimizer:
    return make_optimizer(name, space, seed=seed, **FAST.get(name, {}))


def on_grid(space: Space, point: dict[str, float]) -> bool:
    idx = (np.array([point[n] for n in space.names]) - space.lower) / space.resolution
    return bool(
        np.allclose(idx, np.rint(idx), atol=1e-6)
        and np.all(idx >= -1e-9)
        and np.all(idx <= space.steps + 1e-9)
    )


def campaign(opt: Optimizer, steps: int, batch: int = 1) -> list[dict[str, float]]:
    asked: list[dict[str, float]] = []
    for _ in range(steps):
        points = opt.ask(batch)
        asked.extend(points)
        opt.tell(points, [bump_loss(p) for p in points])
    return asked


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_points_on_grid_in_bounds_never_repeated(name: str, cd_space: Space) -> None:
    opt = build(name, cd_space)
    asked = campaign(opt, 14, batch=1) + campaign(opt, 3, batch=3)
    keys = [(p["T"], p["C"]) for p in asked]
    assert len(keys) == 14 + 9
    assert len(set(keys)) == len(keys)
    assert all(on_grid(cd_space, p) for p in asked)
    assert opt.n_told == len(keys)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_pending_points_are_not_asked_again(name: str, cd_space: Space) -> None:
    opt = build(name, cd_space)
    campaign(opt, 8)
    first = opt.ask(2)
    second = opt.ask(2)
    assert not {(p["T"], p["C"]) for p in first} & {(p["T"], p["C"]) for p in second}
    assert len(opt.pending) == 4


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_deterministic_and_state_resumes_exactly(name: str, cd_space: Space) -> None:
    a = build(name, cd_space, seed=3)
    b = build(name, cd_space, seed=3)
    assert campaign(a, 9) == campaign(b, 9)
    # crash after 9 experiments: the JSON state must give the same future as going on
    state = json.loads(json.dumps(a.state()))
    resumed = restore_optimizer(state)
    assert type(resumed) is type(a)
    assert campaign(resumed, 4) == campaign(a, 4)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_failed_experiments_and_bad_losses(name: str, cd_space: Space) -> None:
    opt = build(name, cd_space)
    points = opt.ask(3)
    opt.tell(points, [None, bump_loss(points[1]), None])
    assert opt.n_told == 3
    best = opt.best()
    assert best is not None and best[0] == points[1]
    nxt = opt.ask(4)
    assert not {(p["T"], p["C"]) for p in nxt} & {(p["T"], p["C"]) for p in points}
    with pytest.raises(ValueError, match="loss 0 is NaN; tell a failed experiment with loss None"):
        opt.tell(nxt[:1], [float("nan")])
    with pytest.raises(ValueError, match="point has 3 values but the space has 2"):
        opt.tell([[100.0, 0.5, 1.0]], [0.0])
    with pytest.raises(ValueError, match="2 points but 1 losses"):
        opt.tell(nxt[:2], [0.0])
    assert opt.n_told == 3  # a rejected tell stores nothing


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_preloaded_history_is_never_asked(name: str) -> None:
    space = Space(["a", "b"], np.zeros(2), np.ones(2), np.full(2, 0.25))  # 25 grid points
    opt = build(name, space)
    history = [{"a": a, "b": b} for a in (0.0, 0.5, 1.0) for b in (0.0, 0.25, 0.5, 0.75, 1.0)]
    opt.preload(history, [float(i) for i in range(len(history))])
    rest = []
    while True:
        pts = opt.ask(3)
        if not pts:
            break
        rest.extend(pts)
        opt.tell(pts, [1.0] * len(pts))
    keys = {(p["a"], p["b"]) for p in rest}
    assert len(keys) == len(rest) == 10  # exactly the 10 unmeasured grid points
    assert not keys & {(p["a"], p["b"]) for p in history}


def test_ask_rejects_bad_n(cd_space: Space) -> None:
    opt = build("random", cd_space)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            opt.ask(bad)


def test_registry_errors(cd_space: Space) -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        make_optimizer("nope", cd_space)
    with pytest.raises(ValueError, match="bad hyperparameters"):
        make_optimizer("random", cd_space, wrong=1)
    with pytest.raises(ValueError, match="unknown step kinds \\['nonsense'\\]"):
        make_optimizer("hybrid", cd_space, schedule="ei,nonsense")
    with pytest.raises(ValueError, match="seed"):
        make_optimizer("random", cd_space, seed=-1)
    with pytest.raises(ValueError, match="not an optimizer state"):
        restore_optimizer({"format": "other"})
