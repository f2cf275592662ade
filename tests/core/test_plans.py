"""Experiments people choose (issue 21): given lists and designs, a person's proposals beside
the optimizer, replicates interleaved with random conditions, and a goal confirmed on the mean
of replicates. Each runs on the simulated lab through a real daemon."""

from __future__ import annotations

import math

import pytest

from maosic import plans
from maosic.language.config import load_config
from maosic.plan_service import PlanService
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService, ServiceError
from tests.core.campaign_helpers import config_with, start_sim_daemon, worker

POINTS = [{"T": 120.0, "C": 0.5}, {"T": 150.0, "C": 0.9}, {"T": 100.0, "C": 0.3}]


@pytest.fixture
def sim_daemon():
    handle = start_sim_daemon()
    yield handle
    handle.stop()


def _run(sessions, daemon, tmp_path) -> None:
    runner = worker(sessions, daemon, tmp_path)
    while runner.run_once():
        pass


def _status(sessions, request_id: int) -> dict:
    return CoreService(sessions).status(INSTALLATION, request_id, experiments=True)


def test_a_given_list_runs_exactly_its_points_in_order(sessions, sim_daemon, tmp_path):
    service = CoreService(sessions)
    sent = service.submit(INSTALLATION, config=config_with(), points=POINTS, budget=99)
    assert sent["optimizer"] == "points" and sent["budget"] == 3  # a list's budget: its length
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, sent["id"])
    assert status["status"] == "done", status
    assert [e["params"] for e in status["experiments"]] == POINTS
    assert {e["chosen_by"] for e in status["experiments"]} == {"user:installation"}
    assert all(e["reward"] is not None for e in status["experiments"])


def test_designs_are_generated_on_the_grid():
    space = load_config(config_with()).search_space()
    full = plans.design(space, {"kind": "full_factorial", "levels": 3})
    assert len(full) == 9
    assert {p["T"] for p in full} == {90.0, 135.0, 180.0}
    assert {p["C"] for p in full} == {0.2, 0.7, 1.2}
    ofat = plans.design(space, {"kind": "one_factor_at_a_time", "levels": 5})
    centre = {"T": 135.0, "C": 0.7}
    assert ofat[0] == centre
    assert len(ofat) == 1 + 2 * 4  # the centre once, then 4 other levels per factor
    assert all(p["C"] == 0.7 or p["T"] == 135.0 for p in ofat)  # one factor moves at a time
    with pytest.raises(plans.PlanError, match="at most 1000 points, got 1001"):
        plans.check_points(space, [centre] * 1001)
    with pytest.raises(plans.PlanError, match="design.levels: a whole number from 2 to 21"):
        plans.design(space, {"kind": "full_factorial", "levels": 1})
    with pytest.raises(plans.PlanError, match="design.kind"):
        plans.design(space, {"kind": "latin"})


def test_a_design_request_runs_on_the_lab(sessions, sim_daemon, tmp_path):
    sent = CoreService(sessions).submit(
        INSTALLATION, config=config_with(), design={"kind": "full_factorial", "levels": 2}
    )
    assert sent["budget"] == 4
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, sent["id"])
    assert status["status"] == "done" and status["n_done"] == 4
    assert {e["chosen_by"] for e in status["experiments"]} == {"design:full_factorial"}


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([{"T": 400.0, "C": 0.5}], "'T' = 400.0 is outside its bounds"),
        ([{"T": 120.0}], "missing ['C']"),
        ([{"T": float("nan"), "C": 0.5}], "T must be a finite number"),
        ([{"T": "hot", "C": 0.5}], "T must be a number"),
        ([], "the list is empty"),
        ("T=120", "must be a list of points"),
    ],
)
def test_bad_points_are_refused_naming_the_row_and_the_parameter(sessions, points, message):
    with pytest.raises(ServiceError) as caught:
        CoreService(sessions).submit(INSTALLATION, config=config_with(), points=points)
    assert caught.value.field == "points"
    assert message in str(caught.value), str(caught.value)


def test_points_from_csv_name_the_line():
    space = load_config(config_with()).search_space()
    assert plans.points_from_csv("C,T\n0.5,120\n0.9,150\n", space) == POINTS[:2]
    with pytest.raises(plans.PlanError, match="CSV line 3, column T: 'x'"):
        plans.points_from_csv("T,C\n120,0.5\nx,0.5\n", space)
    with pytest.raises(plans.PlanError, match=r"unknown \['Temp'\]"):
        plans.points_from_csv("Temp,C\n120,0.5\n", space)
    with pytest.raises(plans.PlanError, match="CSV row 1: parameter 'C'"):
        plans.points_from_csv("T,C\n120,7\n", space)


def test_a_persons_points_run_before_the_optimizers_and_are_told_to_it(
    sessions, sim_daemon, tmp_path
):
    service, chosen = CoreService(sessions), PlanService(CoreService(sessions))
    sent = service.submit(INSTALLATION, config=config_with(optimizer="random"), budget=5, seed=2)
    suggestion = chosen.suggest(INSTALLATION, sent["id"])
    assert suggestion["chosen_by"] == "optimizer:random" and set(suggestion["point"]) == {"T", "C"}
    chosen.propose(INSTALLATION, sent["id"], POINTS[:2])
    assert [p["params"] for p in chosen.plan(INSTALLATION, sent["id"])] == POINTS[:2]
    assert chosen.suggest(INSTALLATION, sent["id"])["chosen_by"] == "user:installation"
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, sent["id"])
    by = [e["chosen_by"] for e in status["experiments"]]
    assert by == ["user:installation"] * 2 + ["optimizer:random"] * 3, by
    assert [e["params"] for e in status["experiments"][:2]] == POINTS[:2]
    # the optimizer was told the person's points: it never proposes them again
    later = [e["params"] for e in status["experiments"][2:]]
    assert not any(p in POINTS[:2] for p in later)
    with pytest.raises(ServiceError, match="is done: nothing to add"):
        chosen.propose(INSTALLATION, sent["id"], POINTS[:1])


def test_repeat_the_best_interleaved_with_random_conditions(sessions, sim_daemon, tmp_path):
    service, chosen = CoreService(sessions), PlanService(CoreService(sessions))
    first = service.submit(INSTALLATION, config=config_with(), points=POINTS)
    _run(sessions, sim_daemon, tmp_path)
    original = max(_status(sessions, first["id"])["experiments"], key=lambda e: e["reward"])
    again = chosen.repeat(INSTALLATION, first["id"], n=3, seed=5)
    assert again["budget"] == 5  # replicate, random, replicate, random, replicate
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, again["id"])
    assert status["status"] == "done"
    exps = status["experiments"]
    replicates = [e for e in exps if e["replicate_of"] is not None]
    assert [e["number"] for e in replicates] == [1, 3, 5]
    assert all(e["params"] == original["params"] for e in replicates)
    assert all(e["params"] != original["params"] for e in exps if e not in replicates)
    assert {e["chosen_by"] for e in exps if e not in replicates} == {plans.INTERLEAVED}
    groups = chosen.replicates(INSTALLATION, again["id"])
    assert len(groups) == 1
    group = groups[0]
    rewards = [original["reward"]] + [e["reward"] for e in replicates]
    assert group["n"] == 4
    assert group["mean"] == pytest.approx(sum(rewards) / 4)
    mean = sum(rewards) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / 3)
    assert group["std"] == pytest.approx(std)
    assert group["cv_percent"] == pytest.approx(100 * std / abs(mean))
    # the original's request shows the same group
    assert chosen.replicates(INSTALLATION, first["id"])[0]["mean"] == group["mean"]
    with pytest.raises(ServiceError, match="no finished experiment 9"):
        chosen.repeat(INSTALLATION, first["id"], n=2, number=9)
    with pytest.raises(ServiceError, match="n"):
        chosen.repeat(INSTALLATION, first["id"], n=0)


def test_a_goal_is_confirmed_on_the_mean_of_replicates(sessions, sim_daemon, tmp_path):
    service = CoreService(sessions)
    # a goal every experiment reaches: the first reaches it, and its 2 replicates confirm it
    target = {"metric": "max_abs_cd_at_exciton", "goal": -1.0, "confirm": 2}
    sent = service.submit(INSTALLATION, config=config_with(), target=target, budget=1)
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, sent["id"])
    assert status["status"] == "done"
    assert "its 2 replicates average" in status["stop_reason"], status["stop_reason"]
    exps = status["experiments"]
    # one counted experiment (the budget) and two confirmations beyond it
    assert [e["chosen_by"] for e in exps] == ["optimizer:snobfit", "confirm", "confirm"]
    assert exps[1]["params"] == exps[0]["params"] == exps[2]["params"]
    with pytest.raises(ServiceError, match="'confirm' must be a whole number of replicates"):
        service.submit(INSTALLATION, config=config_with(), target={**target, "confirm": 99})


def test_a_best_that_does_not_reproduce_does_not_stop_the_request(
    sessions, sim_daemon, tmp_path, monkeypatch
):
    """A single lucky reading (the lab reads high once) reaches the goal; its replicates do
    not: the request goes on rather than stop on a value that does not reproduce."""
    from maosic import campaign

    real = campaign.compute_reward
    calls = {"n": 0}

    def lucky_first(target, spectra):
        reward = real(target, spectra)
        calls["n"] += 1
        if calls["n"] == 1:
            reward.value = 1e6
        return reward

    monkeypatch.setattr(campaign, "compute_reward", lucky_first)
    target = {"metric": "max_abs_cd_at_exciton", "goal": 5e5, "confirm": 2}  # mean ~3.3e5
    sent = CoreService(sessions).submit(
        INSTALLATION, config=config_with(optimizer="random"), target=target, budget=4
    )
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, sent["id"])
    assert status["stop_reason"] == "budget of 4 experiments used", status["stop_reason"]
    by = [e["chosen_by"] for e in status["experiments"]]
    assert by.count("confirm") == 2 and len(by) == 6, by


def test_a_confirmed_goal_is_not_met_by_one_earlier_reading(sessions, sim_daemon, tmp_path):
    """History that reached the goal ends a plain request at once; with ``confirm`` the goal
    needs this request's own replicates."""
    service = CoreService(sessions)
    service.submit(INSTALLATION, config=config_with(), points=POINTS[:1])
    _run(sessions, sim_daemon, tmp_path)  # history of the reaction, above the goal below
    target = {"metric": "max_abs_cd_at_exciton", "goal": -1.0}
    plain = service.submit(INSTALLATION, config=config_with(), target=target, budget=1)
    _run(sessions, sim_daemon, tmp_path)
    assert _status(sessions, plain["id"])["n_done"] == 0  # met by the earlier reading
    confirmed = service.submit(
        INSTALLATION, config=config_with(), target={**target, "confirm": 2}, budget=1
    )
    _run(sessions, sim_daemon, tmp_path)
    status = _status(sessions, confirmed["id"])
    assert "its 2 replicates average" in status["stop_reason"], status["stop_reason"]
    assert len(status["experiments"]) == 3
