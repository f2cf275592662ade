"""Kill the core and the daemon at random points of a campaign: nothing lost, nothing doubled."""

import random
import time

from sqlalchemy import select

from maosic.db.models import Experiment, ExperimentStatus
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for
from tests.faults.processes import core_process, daemon_process

BUDGET = 10


def _wait_n_done(url: str, request_id: int, n: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while rpc(url, "request.status", id=request_id)["n_done"] < n:
        assert time.monotonic() < deadline, f"request {request_id} stuck before {n} experiments"
        time.sleep(0.02)


def _check_campaign(sessions, request_id: int) -> list[Experiment]:
    with sessions() as session:
        rows = session.scalars(
            select(Experiment)
            .where(Experiment.request_id == request_id)
            .order_by(Experiment.number)
        ).all()
        # A failed experiment (e.g. a saturated spectrum) counts against the budget like a done one.
        counted = (ExperimentStatus.DONE, ExperimentStatus.FAILED)
        done = [e for e in rows if e.status in counted]
        assert len(done) == BUDGET, [(e.number, e.status) for e in rows]
        points = [tuple(sorted(e.params.items())) for e in done]
        assert len(set(points)) == len(points), "an experiment was stored twice"
        for exp in done:
            assert sorted(s.kind for s in exp.spectra) == ["absorbance", "cd"]
            assert (exp.reward is None) == (exp.status == ExperimentStatus.FAILED)
        # every experiment cut off is measured later with the same parameters (pipelined, a
        # crash cuts off two: the one being measured and the next one; a second crash may cut
        # the redo off again)
        for index, exp in enumerate(rows):
            if exp.status == ExperimentStatus.ABORTED:
                later = [e.params for e in rows[index + 1 :] if e.status in counted]
                assert exp.params in later, f"experiment {exp.number} was cut off and lost"
        assert [e.number for e in rows] == list(range(1, len(rows) + 1))
        return rows


def test_core_killed_at_random_points_resumes(db_url, sessions, tmp_path):
    rng = random.Random(20261124)
    daemon = daemon_process(tmp_path).start()
    core = core_process(tmp_path, db_url, daemon.url).start()
    try:
        sub = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=BUDGET, seed=5)
        for _ in range(2):
            _wait_n_done(core.url, sub["id"], rng.randint(1, BUDGET - 3))
            time.sleep(rng.uniform(0, 0.3))
            core.kill9()
            core.start()
        final = wait_for(core.url, sub["id"], {"done", "failed"}, timeout_s=180)
        assert final["status"] == "done", final
    finally:
        core.stop()
        daemon.stop()
    _check_campaign(sessions, sub["id"])


def test_daemon_killed_mid_campaign_pauses_then_resumes(db_url, sessions, tmp_path):
    rng = random.Random(7)
    daemon = daemon_process(tmp_path).start()
    core = core_process(tmp_path, db_url, daemon.url).start()
    try:
        sub = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=BUDGET, seed=6)
        _wait_n_done(core.url, sub["id"], rng.randint(1, BUDGET - 3))
        daemon.kill9()
        paused = wait_for(core.url, sub["id"], {"paused"}, timeout_s=60)
        assert "daemon" in paused["failure_reason"]
        daemon.start()  # same port
        final = wait_for(core.url, sub["id"], {"done", "failed"}, timeout_s=180)
        assert final["status"] == "done", final
    finally:
        core.stop()
        daemon.stop()
    _check_campaign(sessions, sub["id"])
