"""OPTIMAL after LOAD_REACTION_HISTORY: a goal that earlier requests of the same reaction
already met ends the request at once, linked to the experiment that met it (issue 19)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from maosic.db.models import Experiment
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for


def test_a_goal_met_by_history_ends_the_request_without_an_experiment(stack, sessions):
    url = stack.core.url
    first = rpc(url, "request.submit", config=cspbbr3_config(), budget=3, seed=2)["id"]
    done = wait_for(url, first, {"done", "failed"}, 120)
    assert done["status"] == "done", done
    best = done["best_reward"]
    with sessions() as session:
        number = session.scalar(  # not by equality: MySQL's FLOAT rounds the stored reward
            select(Experiment.number)
            .where(Experiment.request_id == first)
            .order_by(Experiment.reward.desc())
            .limit(1)
        )
    target = dict(done["target"] or {"metric": cspbbr3_config()["metric"]}, goal=best - 1e-6)
    met = rpc(url, "request.submit", config=cspbbr3_config(), budget=5, seed=3, target=target)
    final = wait_for(url, met["id"], {"done", "failed"}, 120)
    assert final["status"] == "done" and final["n_done"] == 0, final
    assert f"experiment {number} of request {first}" in final["stop_reason"], final
    assert final["best_reward"] == pytest.approx(best, rel=1e-6)
    with sessions() as session:
        ran = session.scalar(
            select(func.count()).select_from(Experiment).where(Experiment.request_id == met["id"])
        )
    assert ran == 0
    # a goal above everything measured so far is not met: the request runs
    higher = dict(target, goal=best + 100.0)
    runs = rpc(url, "request.submit", config=cspbbr3_config(), budget=1, seed=4, target=higher)
    final = wait_for(url, runs["id"], {"done", "failed"}, 120)
    assert final["n_done"] == 1 and "budget" in final["stop_reason"], final
