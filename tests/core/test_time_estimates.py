"""Time estimates (issue 20, item 9): measured per-experiment time, the queue ahead, the clock.

A queued request's time left is the wait for everything ahead of it plus its own run, each at
the measured pace; a simulated lab's own clock (faster than the wall clock) is given apart.
"""

import threading
import time
from datetime import timedelta

import pytest

from maosic.analysis.reward import METRIC_UNITS, METRICS, reward_unit
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Reaction,
    Request,
    RequestStatus,
    utcnow,
)
from maosic.db.session import transaction
from maosic.queue import DEFAULT_EXPERIMENT_S, enqueue, estimates, pace
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from tests.core.campaign_helpers import config_with, start_sim_daemon, worker
from user_control.requests_cli import render_request


def _reaction(session) -> Reaction:
    reaction = Reaction(name="r", config={"type": "reaction"}, config_sha256="0" * 64)
    session.add(reaction)
    session.flush()
    return reaction


def _timed(session, request: Request, n: int, wall_s: float, lab_s: float | None) -> None:
    """``n`` finished experiments back to back, ``wall_s`` apart, each ``lab_s`` on the lab's
    clock; the newest finished just now."""
    end = utcnow()
    for i in range(1, n + 1):
        finished = end - timedelta(seconds=wall_s * (n - i))
        session.add(
            Experiment(
                request_id=request.id,
                number=i,
                params={"T": 100.0 + i},
                status=ExperimentStatus.DONE,
                reward=0.1 * i,
                lab_time_s=lab_s,
                started_at=finished - timedelta(seconds=0.8 * wall_s),
                finished_at=finished,
            )
        )
    session.flush()


def _queue(sessions, wall_s: float, lab_s: float | None) -> tuple[int, int, int]:
    """A 250-experiment run 50 experiments in, then two queued requests of 10."""
    with transaction(sessions) as session:
        reaction = _reaction(session)
        running = enqueue(session, reaction, {"metric": "max_abs_cd_at_exciton"}, 250, "random")
        running.status = RequestStatus.RUNNING
        running.started_at = utcnow()
        _timed(session, running, 50, wall_s, lab_s)
        first = enqueue(session, reaction, {"metric": "target_wavelength"}, 10, "random")
        second = enqueue(session, reaction, {"metric": "max_pl_intensity"}, 10, "random")
        return running.id, first.id, second.id


def test_a_queued_request_waits_for_the_long_run_ahead(sessions):
    """A real-time lab: 60 s per experiment on both clocks."""
    running, first, second = _queue(sessions, wall_s=60.0, lab_s=55.0)
    with sessions() as session:
        times = estimates(session)
    assert times[running].start_s == 0
    assert times[running].run_s == pytest.approx(200 * 60.0, rel=0.01)
    # behind the 200 experiments left of the long run: not "1 s"
    assert times[first].start_s == pytest.approx(200 * 60.0, rel=0.01)
    assert times[first].eta_s == pytest.approx(210 * 60.0, rel=0.01)
    assert times[second].start_s == pytest.approx(210 * 60.0, rel=0.01)
    fields = times[first].fields()
    assert fields["eta_clock"] == "wall clock" and fields["eta_basis"] == "measured"
    assert fields["eta_lab_s"] is None  # the lab's clock keeps wall time: one figure says it


def test_core_status_and_queue_list_give_the_same_estimates(sessions):
    running, first, second = _queue(sessions, wall_s=60.0, lab_s=55.0)
    service = CoreService(sessions)
    status = service.status(INSTALLATION, first)
    assert status["position"] == 1
    assert status["eta_s"] == pytest.approx(210 * 60.0, rel=0.01)
    assert status["estimated_start_s"] == pytest.approx(200 * 60.0, rel=0.01)
    listed = service.queue_list(INSTALLATION)
    assert [r["id"] for r in listed] == [running, first, second]
    assert [r["estimated_start_s"] for r in listed] == [
        0.0,
        status["estimated_start_s"],
        pytest.approx(210 * 60.0, rel=0.01),
    ]
    assert [r["eta_clock"] for r in listed] == ["wall clock"] * 3
    mine = {r["id"]: r for r in service.request_list(INSTALLATION)}
    assert mine[first]["eta_s"] == status["eta_s"]


def test_a_fast_simulated_lab_is_estimated_on_the_wall_clock_and_its_own(sessions):
    """A simulated lab at high speed: 0.05 s of wall time, 300 s of its clock per experiment.
    The time left is what one waits (seconds), the lab's clock is told apart."""
    running, first, _ = _queue(sessions, wall_s=0.05, lab_s=300.0)
    with sessions() as session:
        times = estimates(session)
        assert pace(session, running).simulated
    assert times[running].eta_s == pytest.approx(200 * 0.05, rel=0.05)  # ~10 s, not hours
    assert times[first].eta_s == pytest.approx(210 * 0.05, rel=0.05)
    fields = times[first].fields()
    assert fields["eta_clock"] == "wall clock"
    assert fields["eta_lab_s"] == pytest.approx(210 * 300.0, rel=0.01)
    assert fields["experiment_lab_s"] == pytest.approx(300.0)


def test_nothing_timed_yet_is_an_assumption_and_says_so(sessions):
    with transaction(sessions) as session:
        reaction = _reaction(session)
        request = enqueue(session, reaction, {"metric": "m"}, 4, "random")
        request_id = request.id
    with sessions() as session:
        estimate = estimates(session)[request_id]
    assert estimate.eta_s == 4 * DEFAULT_EXPERIMENT_S
    assert estimate.fields()["eta_basis"] == "assumed"
    shown = "\n".join(render_request(CoreService(sessions).status(INSTALLATION, request_id)))
    assert "estimated time left 8 min 00 s (wall clock, assumed 2 min" in shown, shown
    assert "starts in about 0 s" in shown, shown


def test_a_pause_between_experiments_is_not_the_pace(sessions):
    with transaction(sessions) as session:
        reaction = _reaction(session)
        request = enqueue(session, reaction, {"metric": "m"}, 40, "random")
        request.status = RequestStatus.RUNNING
        _timed(session, request, 10, wall_s=2.0, lab_s=None)
        # the lab went away for an hour before experiment 11
        last = session.query(Experiment).filter_by(request_id=request.id, number=10).one()
        session.add(
            Experiment(
                request_id=request.id,
                number=11,
                params={"T": 1.0},
                status=ExperimentStatus.DONE,
                started_at=last.finished_at + timedelta(hours=1),
                finished_at=last.finished_at + timedelta(hours=1, seconds=1.6),
            )
        )
        request_id = request.id
    with sessions() as session:
        measured = pace(session, request_id)
    assert measured.wall_s == pytest.approx(2.0, rel=0.1)
    assert measured.lab_s is None and not measured.simulated


def test_every_metric_has_a_reward_unit():
    assert set(METRIC_UNITS) == set(METRICS)
    assert reward_unit({"metric": "max_abs_cd_at_exciton"}) == "mdeg"
    assert reward_unit({"metric": "target_wavelength", "wavelength_nm": 520}) == "nm"
    assert reward_unit({"metric": "max_pl_intensity"}) == "counts"
    assert reward_unit({"metric": "no such metric"}) is None
    assert reward_unit(None) is None


def test_the_eta_of_a_fast_simulated_run_is_of_the_order_of_its_run_time(sessions, tmp_path):
    """The terminal's ETA (request.status's eta_s, what `maosic-lab watch` prints) on a
    simulated lab at speed 0: hours on the lab's clock, a few seconds of waiting. Once a few
    experiments are timed it is within a small factor of the time the rest really takes."""
    daemon = start_sim_daemon()
    try:
        service = CoreService(sessions)
        budget = 40
        request_id = service.submit(
            INSTALLATION, config=config_with(optimizer="random"), budget=budget, seed=3
        )["id"]
        seen: list[tuple[float, dict]] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen.append((time.monotonic(), service.status(INSTALLATION, request_id)))
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            assert worker(sessions, daemon, tmp_path).run_once()
        finally:
            done.set()
            watcher.join()
        ended = time.monotonic()
    finally:
        daemon.stop()
    final = service.status(INSTALLATION, request_id)
    assert final["status"] == "done" and final["eta_s"] is None
    timed = [(t, s) for t, s in seen if 5 <= s["n_done"] < budget - 5]
    assert timed, "the watcher saw no status mid-run"
    for t, status in timed:
        left = ended - t
        assert status["eta_clock"] == "wall clock" and status["eta_basis"] == "measured"
        assert status["eta_s"] < 10 * left + 1.0, (status["eta_s"], left)
        assert status["eta_s"] > left / 10, (status["eta_s"], left)
        # the lab's clock, told apart: minutes per experiment, not the seconds waited
        assert status["eta_lab_s"] is not None and status["eta_lab_s"] > 50 * status["eta_s"]
    # what `user_control show` prints for one of them: the clock named, the lab's apart
    shown = "\n".join(render_request(timed[0][1]))
    assert "estimated time left" in shown and "per experiment measured" in shown, shown
    assert "on the simulated lab's clock" in shown, shown
