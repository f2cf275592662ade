"""SQSnobFit wrapper: per-instance state, recovery from its failures, no repeats."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from maosic.optimize import snobfit as wrapper
from maosic.optimize.snobfit import SnobfitOptimizer
from maosic.optimize.space import Space
from tests.optimize.conftest import bump_loss


def run(opt: SnobfitOptimizer, steps: int) -> list[dict[str, float]]:
    out = []
    for _ in range(steps):
        p = opt.ask(1)
        out.extend(p)
        opt.tell(p, [bump_loss(q) for q in p])
    return out


def test_two_campaigns_in_one_process_do_not_share_state(cd_space: Space) -> None:
    alone = run(SnobfitOptimizer(cd_space, seed=1), 30)
    a = SnobfitOptimizer(cd_space, seed=1)
    b = SnobfitOptimizer(cd_space, seed=2)
    interleaved = []
    for _ in range(30):
        interleaved.extend(run(a, 1))
        run(b, 1)
    assert interleaved == alone


def test_module_globals_are_put_back(cd_space: Space) -> None:
    sentinel = ("someone else's state",)
    wrapper._sq_snobfit._im_storage = sentinel
    rand_before = wrapper._sq_gen._randstate.get_state()[1].copy()
    try:
        run(SnobfitOptimizer(cd_space, seed=0), 12)
        assert wrapper._sq_snobfit._im_storage is sentinel
        assert np.array_equal(wrapper._sq_gen._randstate.get_state()[1], rand_before)
    finally:
        wrapper._sq_snobfit._im_storage = None


def test_exceptions_are_recovered_logged_and_deterministic(
    cd_space: Space, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = wrapper._sq_snobfit.snobfit
    calls = {"n": 0}

    def flaky(x, f, config, dx=None):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(x, f, config, dx)

    monkeypatch.setattr(wrapper._sq_snobfit, "snobfit", flaky)
    with caplog.at_level(logging.WARNING, logger="maosic.optimize.base"):
        first = run(SnobfitOptimizer(cd_space, seed=4, rebuild_after=2), 25)
    assert any("LinAlgError" in r.getMessage() for r in caplog.records)
    calls["n"] = 0
    opt = SnobfitOptimizer(cd_space, seed=4, rebuild_after=2)
    second = run(opt, 25)
    assert first == second
    assert opt.failures_recovered >= 5
    assert len({(p["T"], p["C"]) for p in second}) == 25


def test_state_is_rebuilt_after_failures_in_a_row(
    cd_space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = wrapper._sq_snobfit.snobfit
    calls = {"n": 0}

    def failing_for_a_while(x, f, config, dx=None):
        calls["n"] += 1
        if 8 <= calls["n"] <= 12:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(x, f, config, dx)

    monkeypatch.setattr(wrapper._sq_snobfit, "snobfit", failing_for_a_while)
    opt = SnobfitOptimizer(cd_space, seed=0, rebuild_after=2)
    pts = run(opt, 25)
    assert [r.split(":")[0] for r in opt.recoveries if not r.startswith("duplicate")].count(
        "rebuild"
    ) >= 1
    assert opt.failures_recovered == 5
    assert len({(p["T"], p["C"]) for p in pts}) == 25


def test_always_failing_snobfit_still_serves_points(
    cd_space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(x, f, config, dx=None):
        raise AttributeError("module 'numpy' has no attribute 'NaN'")  # numpy 2.x symptom

    monkeypatch.setattr(wrapper._sq_snobfit, "snobfit", broken)
    opt = SnobfitOptimizer(cd_space, seed=0)
    pts = run(opt, 10)
    assert len({(p["T"], p["C"]) for p in pts}) == 10
    assert opt.failures_recovered == 10


def test_real_singular_matrices_never_escape() -> None:
    # a coarse grid makes grid-snapped neighbours collinear, SQSnobFit's LinAlgError case
    space = Space(["x", "y"], np.zeros(2), np.ones(2), np.full(2, 0.05))
    opt = SnobfitOptimizer(space, seed=0)
    seen = set()
    for _ in range(120):
        pts = opt.ask(1)
        if not pts:
            break
        p = pts[0]
        key = (p["x"], p["y"])
        assert key not in seen
        seen.add(key)
        opt.tell(pts, [(p["x"] - 0.3) ** 2 + (p["y"] - 0.7) ** 2])
    assert len(seen) == 120
    assert opt.best()[0] == {"x": 0.3, "y": 0.7}


def test_uncertainties_are_accepted(cd_space: Space) -> None:
    opt = SnobfitOptimizer(cd_space, seed=0)
    for i in range(15):
        p = opt.ask(1)
        opt.tell(p, [bump_loss(p[0])], [0.01 * (1 + i % 3)])
    assert opt.n_told == 15


def test_a_request_for_a_measured_point_gets_the_nearest_free_grid_point(
    cd_space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    opt = SnobfitOptimizer(cd_space, seed=0)
    run(opt, 12)
    measured = opt._keys[5]
    monkeypatch.setattr(opt, "_request", lambda nreq: [np.array(measured)])
    p = opt.ask(1)[0]
    got = cd_space.index_of_point(p, "test")
    # one grid step away from the re-requested point (measured neighbours excluded)
    assert np.abs(got - np.array(measured)).max() <= 1
    assert tuple(int(v) for v in got) not in opt._measured
    assert opt.recoveries[-1].startswith("duplicate")


def test_the_space_filling_variant_goes_far_instead(
    cd_space: Space, monkeypatch: pytest.MonkeyPatch
) -> None:
    opt = SnobfitOptimizer(cd_space, seed=0, replace="space_filling")
    run(opt, 12)
    measured = opt._keys[5]
    monkeypatch.setattr(opt, "_request", lambda nreq: [np.array(measured)])
    got = cd_space.index_of_point(opt.ask(1)[0], "test")
    assert np.abs(got - np.array(measured)).max() > 5
    with pytest.raises(ValueError, match="replace must be one of"):
        SnobfitOptimizer(cd_space, replace="random")
