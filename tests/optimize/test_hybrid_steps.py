"""The default optimizer's step kinds: quadratic local step, EI refinement, the alternative-hill
step that climbs its own hill, and exploration that does not crowd the box's edges."""

from __future__ import annotations

import numpy as np
import pytest

from maosic.optimize import DEFAULT_OPTIMIZER, make_optimizer, optimizer_class
from maosic.optimize.hybrid import HybridOptimizer, _quadratic_features, warp_losses
from maosic.optimize.space import Space


def unit_space(step: float = 0.005) -> Space:
    return Space(["x1", "x2"], np.zeros(2), np.ones(2), np.full(2, step))


def test_default_is_the_hybrid() -> None:
    assert optimizer_class("default") is HybridOptimizer
    assert optimizer_class(DEFAULT_OPTIMIZER) is HybridOptimizer


def test_quadratic_features_columns() -> None:
    x = np.array([[2.0, 3.0], [-1.0, 0.5]])
    f = _quadratic_features(x)
    assert f.shape == (2, 6)
    # 1, x1, x2, x1^2, x1 x2, x2^2
    assert np.allclose(f[0], [1, 2, 3, 4, 6, 9])
    assert np.allclose(f[1], [1, -1, 0.5, 1, -0.5, 0.25])


def rotated_valley(p: dict[str, float]) -> float:
    """A narrow valley along the diagonal (like a flow ratio), minimum 0 at (0.6, 0.55)."""
    u = (p["x1"] - 0.6) + (p["x2"] - 0.55)
    v = (p["x1"] - 0.6) - (p["x2"] - 0.55)
    return float(u**2 + 25.0 * v**2)


def test_quad_step_moves_towards_a_rotated_minimum() -> None:
    space = unit_space()
    rng = np.random.default_rng(3)
    pts = [
        {"x1": float(a), "x2": float(b)} for a, b in np.round(0.45 + 0.3 * rng.random((24, 2)), 3)
    ]
    pts = [space.to_point(space.index_of_point(p, "test")) for p in pts]
    losses = [rotated_valley(p) for p in pts]
    opt = make_optimizer(
        "hybrid", space, seed=1, schedule="quad", stalled_schedule="quad", n_initial=1
    )
    opt.preload(pts, losses)
    proposal = opt.ask(1)[0]
    assert rotated_valley(proposal) < min(losses)
    assert opt.recoveries == []


def bowl_far_away(p: dict[str, float]) -> float:
    """A round bowl whose minimum (0.95, 0.95) lies well outside the sampled patch."""
    return float((p["x1"] - 0.95) ** 2 + (p["x2"] - 0.95) ** 2)


@pytest.mark.parametrize("quad_box", [0.25, 0.5, 1.0])
def test_quad_step_stays_within_quad_box_times_the_neighbours_spacing(quad_box: float) -> None:
    """The quadratic model is trusted only near its data: the step moves at most ``quad_box``
    times the neighbours' median distance (per coordinate) from the best point, even when the
    model's minimum lies much further (here 0.5 away)."""
    space = unit_space()
    rng = np.random.default_rng(5)
    pts = [space.to_point(space.index_of_unit(0.2 + 0.2 * rng.random(2))) for _ in range(24)]
    losses = [bowl_far_away(p) for p in pts]
    opt = make_optimizer(
        "hybrid",
        space,
        seed=2,
        schedule="quad",
        stalled_schedule="quad",
        n_initial=1,
        quad_box=quad_box,
    )
    opt.preload(pts, losses)
    proposal = opt.ask(1)[0]
    z = np.array([[q["x1"], q["x2"]] for q in pts])
    centre = z[int(np.argmin(losses))]
    dist = np.sort(np.sqrt(((z - centre) ** 2).sum(axis=1)))[1:]
    # the model is fitted to the 9 nearest points (1.5 x 6 coefficients): the best + 8 others
    half = quad_box * float(np.median(dist[:8]))
    step = np.abs(np.array([proposal["x1"], proposal["x2"]]) - centre)
    assert bowl_far_away(proposal) < min(losses)  # downhill, towards the far minimum
    assert np.all(step <= half + 0.005 + 1e-9)  # one grid step of snapping
    assert np.max(step) > 0.6 * half  # it does go to the edge of its box


def bump_on_broad_hill(p: dict[str, float]) -> float:
    x = np.array([p["x1"], p["x2"]])
    broad = 0.8 * np.exp(-np.sum((x - [0.3, 0.3]) ** 2) / (2 * 0.2**2))
    narrow = np.exp(-np.sum((x - [0.8, 0.8]) ** 2) / (2 * 0.05**2))
    return -float(broad + narrow)


def test_alternative_step_climbs_the_lone_surprising_point() -> None:
    space = unit_space()
    # many points on the broad hill, one far away on the narrow peak's skirt
    grid = [
        {"x1": a, "x2": b} for a in (0.1, 0.2, 0.3, 0.4, 0.5) for b in (0.1, 0.2, 0.3, 0.4, 0.5)
    ]
    grid += [{"x1": 0.05, "x2": 0.95}, {"x1": 0.95, "x2": 0.05}, {"x1": 0.55, "x2": 0.9}]
    lone = {"x1": 0.74, "x2": 0.76}
    pts = grid + [lone]
    opt = make_optimizer(
        "hybrid", space, seed=0, schedule="alt", stalled_schedule="alt", n_initial=1
    )
    opt.preload(pts, [bump_on_broad_hill(p) for p in pts])
    proposal = opt.ask(1)[0]
    nearest_other = min(np.hypot(p["x1"] - lone["x1"], p["x2"] - lone["x2"]) for p in grid)
    # inside the box reaching half way to the nearest other sample, and higher up the new hill
    gap = max(abs(proposal["x1"] - lone["x1"]), abs(proposal["x2"] - lone["x2"]))
    assert gap <= 0.5 * nearest_other + 1e-9
    assert bump_on_broad_hill(proposal) < bump_on_broad_hill(lone)


@pytest.mark.parametrize("edge_weight", [0.0, 2.0])
def test_explore_keeps_off_the_edges_only_with_edge_weight(edge_weight: float) -> None:
    space = unit_space(0.01)
    centre = [{"x1": 0.5, "x2": 0.5}, {"x1": 0.45, "x2": 0.55}, {"x1": 0.55, "x2": 0.5}]
    opt = make_optimizer(
        "hybrid",
        space,
        seed=2,
        schedule="explore",
        stalled_schedule="explore",
        n_initial=1,
        edge_weight=edge_weight,
    )
    opt.preload(centre, [0.0, 0.1, 0.2])
    p = opt.ask(1)[0]
    edge = min(p["x1"], p["x2"], 1 - p["x1"], 1 - p["x2"])
    if edge_weight:
        assert edge > 0.1
    else:
        assert edge < 0.05  # plain maximin goes to the boundary


def test_ei_refinement_is_deterministic_and_restorable() -> None:
    space = Space([f"x{i}" for i in range(5)], np.zeros(5), np.ones(5), np.full(5, 0.01))

    def loss(p: dict[str, float]) -> float:
        return float(sum((p[f"x{i}"] - 0.3) ** 2 for i in range(5)))

    a = make_optimizer("hybrid", space, seed=4, schedule="ei", n_candidates=300, refine=5)
    for _ in range(12):
        pts = a.ask(1)
        a.tell(pts, [loss(p) for p in pts])
    b = HybridOptimizer.restore(a.state())
    assert b.hyperparameters()["refine"] == 5
    assert a.ask(2) == b.ask(2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"refine": -1}, "refine must be >= 0"),
        ({"edge_weight": -0.5}, "edge_weight must be >= 0"),
        ({"quad_box": 0.0}, "quad_box must be > 0"),
        ({"schedule": "ei,quadratic"}, "unknown step kinds"),
    ],
)
def test_bad_hybrid_hyperparameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_optimizer("hybrid", unit_space(), **kwargs)


def test_large_histories_refit_without_restarts() -> None:
    # issue 22: past restart_until points (not max_fit_points) a refit is one short warm search
    # on a subset, so that an ask stays under 1 s on a loaded machine
    opt = make_optimizer("hybrid", unit_space(), restarts=3, max_fit_points=250, restart_until=60)
    assert (opt._fit_restarts(60), opt._fit_max_iter(60), opt._fit_points(60)) == (3, None, 250)
    assert opt._fit_restarts(61) == 0
    assert opt._fit_max_iter(61) is not None and opt._fit_max_iter(61) <= 25
    assert opt._fit_points(61) <= 100
    with pytest.raises(ValueError, match="restart_until must be >= 0"):
        make_optimizer("hybrid", unit_space(), restart_until=-1)


def test_warp_leaves_losses_without_a_long_bad_tail_alone() -> None:
    rng = np.random.default_rng(5)
    # a reward bounded on the bad side: most losses near 0, a few good (negative) ones
    y = -np.concatenate([rng.uniform(0.0, 0.2, 30), [2.5, 3.0, 3.3]])
    assert np.array_equal(warp_losses(y), y)
    symmetric = rng.normal(size=40)
    assert np.array_equal(warp_losses(symmetric), symmetric)


def test_warp_compresses_a_long_bad_tail_and_keeps_the_order() -> None:
    # Branin-like: losses from 0.4 to ~300, most of them small
    y = np.array([0.4, 1.0, 2.0, 5.0, 8.0, 12.0, 20.0, 30.0, 60.0, 150.0, 300.0])
    w = warp_losses(y)
    assert np.array_equal(np.argsort(w, kind="stable"), np.argsort(y, kind="stable"))
    below = y <= np.median(y)
    assert np.array_equal(w[below], y[below])  # the good half is left as measured
    # the bad tail no longer dominates the range
    assert (w.max() - w.min()) < 0.2 * (y.max() - y.min())


def test_warp_is_a_hyperparameter_and_old_checkpoints_restore() -> None:
    space = unit_space(0.01)
    opt = make_optimizer("hybrid", space, seed=2, n_candidates=200)
    assert opt.hyperparameters()["warp"] is True
    for _ in range(8):
        p = opt.ask(1)
        opt.tell(p, [float((p[0]["x1"] - 0.3) ** 2 + p[0]["x2"])])
    state = opt.state()
    del state["hyperparameters"]["warp"]  # a checkpoint written before the option existed
    resumed = HybridOptimizer.restore(state)
    assert resumed.warp is True
    assert resumed.ask(1) == opt.ask(1)
    with pytest.raises(ValueError, match="bad hyperparameters"):
        make_optimizer("hybrid", space, warp_losses=True)
