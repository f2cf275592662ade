"""A lab that works while it measures (maosic/pipeline.py): the next synthesis overlaps the
previous sample's measurement, over a real daemon on the simulated lab, and a crash or a pause
with two experiments under way loses and repeats nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from hardware_interface.motion_gate import MotionGate
from hardware_interface.server import start_daemon
from maosic import pipeline
from maosic.campaign import Campaign
from maosic.db.models import Experiment, ExperimentStatus, HardwareCommand, Request
from maosic.language.config import load_config
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from tests.core.campaign_helpers import config_with, start_sim_daemon, worker

COUNTED = {"done", "failed"}
ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """The core process dying (not an Exception: nothing may handle it)."""


def _plan(name: str = "cspbbr3", include_init: bool = False) -> list[dict]:
    config = load_config((ROOT / "examples" / f"{name}.json").read_text())
    point = {name: param.default for name, param in config.params.items()}
    return config.program().plan(point, include_init=include_init)


# -- where a plan splits ------------------------------------------------------------------------
def test_the_cspbbr3_plan_splits_where_the_reactor_part_ends():
    parts = pipeline.split(_plan())
    assert parts is not None
    assert parts.synthesis[-1]["method"] == "pump.parallel"
    assert [c["method"] for c in parts.characterization] == [
        "robot.move",
        "robot.move",
        "spectrometer.cd",
        "robot.move",
        "robot.move",
    ]
    assert parts.characterization[0]["params"] == {"position": "sampler"}  # takes the sample
    # pumps and heater only: free to run while the arm and the spectrometer work
    assert parts.may_overlap(parts.synthesis)
    # the init list homes the arm, which the measurement still uses: no overlap then
    with_init = pipeline.split(_plan(include_init=True))
    assert with_init is not None and not parts.may_overlap(with_init.synthesis)


def test_plans_with_nothing_to_overlap_do_not_split():
    # the in-line PL reading is the only characterization call: nothing could overlap
    assert pipeline.split(_plan("cs3cu2i5")) is None
    measure_only = [{"method": "spectrometer.cd", "params": {}}] * 2
    assert pipeline.split(measure_only) is None
    no_measurement = [
        {"method": "pump.fill", "params": {"pump": "SP1"}},
        {"method": "robot.move", "params": {"position": "waste"}},
        {"method": "robot.move", "params": {"position": "home"}},
    ]
    assert pipeline.split(no_measurement) is None


def test_module_clashes():
    parts = pipeline.Split(
        [{"method": "pump.fill", "params": {"pump": "SP1"}}],
        [
            {"method": "robot.move", "params": {"position": "sampler"}},
            {"method": "pump.infuse", "params": {"pump": "SP2"}},
            {"method": "spectrometer.cd", "params": {}},
        ],
    )
    assert parts.may_overlap([{"method": "pump.fill", "params": {"pump": "SP1"}}])
    assert not parts.may_overlap([{"method": "pump.fill", "params": {"pump": "SP2"}}])
    assert not parts.may_overlap([{"method": "system.wait", "params": {"seconds": 1}}])
    assert not parts.may_overlap([{"method": "spectrometer.absorbance", "params": {}}])
    assert parts.may_overlap([{"method": "heater.status", "params": {}}])  # a read


# -- the daemon's motion gate -------------------------------------------------------------------
def test_moving_calls_run_side_by_side_and_a_takeover_waits_for_all_of_them():
    gate = MotionGate()
    inside = threading.Barrier(3)
    release = threading.Event()
    order: list[str] = []

    def moving(name: str) -> None:
        with gate.moving():
            inside.wait(5)  # both moving calls are in at once
            release.wait(5)
            order.append(name)

    threads = [threading.Thread(target=moving, args=(n,)) for n in ("pumps", "scan")]
    for thread in threads:
        thread.start()
    inside.wait(5)
    assert gate.busy() == 2
    assert not gate.acquire(blocking=False)  # a reconciliation skips while calls move

    def takeover() -> None:
        with gate:
            order.append("takeover")

    taker = threading.Thread(target=takeover)
    taker.start()
    time.sleep(0.05)
    late: list[str] = []

    # a waiting takeover holds new moving calls back (no starvation)
    def late_call() -> None:
        with gate.moving():
            late.append("late")

    newcomer = threading.Thread(target=late_call)
    newcomer.start()
    time.sleep(0.05)
    assert order == [] and late == []
    release.set()
    for thread in [*threads, taker, newcomer]:
        thread.join(5)
    assert order[-1] == "takeover" and sorted(order[:2]) == ["pumps", "scan"]
    assert late == ["late"] and gate.busy() == 0
    assert gate.acquire(blocking=False)
    gate.release()


# -- the campaign, over a real daemon -----------------------------------------------------------
@pytest.fixture
def fast_lab():
    """The simulated lab at 400x: waits cost lab time (and a little wall time), so overlapping
    work shows on the lab clock."""
    handle = start_daemon(sim=True, port=0, seed=2, speed=400.0, watchdog_s=0)
    yield handle
    handle.stop()


def _submit(sessions, budget: int, pipelined: bool, optimizer: str = "random") -> int:
    config = config_with(optimizer=optimizer, pipeline=pipelined)
    return CoreService(sessions).submit(INSTALLATION, config=config, budget=budget, seed=5)["id"]


def _status(sessions, request_id: int) -> dict:
    return CoreService(sessions).status(INSTALLATION, request_id, experiments=True)


def _calls(sessions, request_id: int) -> dict[int, list[HardwareCommand]]:
    with sessions() as session:
        rows = session.scalars(
            select(HardwareCommand)
            .where(HardwareCommand.request_id == request_id)
            .order_by(HardwareCommand.id)
        ).all()
        numbers = dict(
            session.execute(
                select(Experiment.id, Experiment.number).where(Experiment.request_id == request_id)
            ).all()
        )
        by_number: dict[int, list[HardwareCommand]] = {}
        for row in rows:
            session.expunge(row)
            by_number.setdefault(numbers.get(row.experiment_id, 0), []).append(row)
    return by_number


def _overlaps(calls: dict[int, list[HardwareCommand]], number: int) -> bool:
    """Whether experiment number+1's synthesis began before experiment number's scan ended."""
    scan = next(c for c in calls[number] if c.method == "spectrometer.cd")
    scan_end = scan.sent_at.timestamp() + (scan.duration_ms or 0) / 1000
    following = calls[number + 1][0]
    return following.sent_at.timestamp() < scan_end


@pytest.mark.parametrize("pipelined", [True, False])
def test_the_next_synthesis_runs_while_the_sample_is_measured(
    sessions, fast_lab, tmp_path, pipelined
):
    request_id = _submit(sessions, 3, pipelined)
    assert worker(sessions, fast_lab, tmp_path).run_once()
    status = _status(sessions, request_id)
    assert status["status"] == "done" and status["n_done"] == 3, status
    experiments = status["experiments"]
    assert [e["number"] for e in experiments] == [1, 2, 3]  # stored in order
    assert all(e["status"] == "done" and e["reward"] is not None for e in experiments)
    calls = _calls(sessions, request_id)
    # every experiment's audit log holds its whole plan: synthesis, then measurement
    for number in (1, 2, 3):
        methods = [c.method for c in calls[number]]
        assert methods[-1] == "system.status" and "spectrometer.cd" in methods
        assert methods.index("pump.parallel") < methods.index("spectrometer.cd")
    assert [_overlaps(calls, n) for n in (1, 2)] == [pipelined, pipelined]
    with sessions() as session:
        lab_times = session.scalars(
            select(Experiment.lab_time_s).where(Experiment.request_id == request_id)
        ).all()
    assert all(t is not None and t > 120 for t in lab_times)  # incl. a 2 min CD scan


def test_a_crash_with_two_experiments_under_way_redoes_both(sessions, tmp_path, monkeypatch):
    daemon = start_sim_daemon()
    try:
        request_id = _submit(sessions, 4, pipelined=True)
        land = Campaign._land
        calls = {"n": 0}

        def dying(self, *args, **kwargs):
            # the 2nd landing happens once experiment 2's synthesis is done and experiment 1
            # is being measured: both rows are running when the core dies
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash()
            return land(self, *args, **kwargs)

        monkeypatch.setattr(Campaign, "_land", dying)
        with pytest.raises(Crash):
            worker(sessions, daemon, tmp_path).run_once()
        with sessions() as session:
            running = session.scalars(
                select(Experiment.params).where(
                    Experiment.request_id == request_id,
                    Experiment.status == ExperimentStatus.RUNNING,
                )
            ).all()
        assert len(running) == 2
        monkeypatch.setattr(Campaign, "_land", land)
        w = worker(sessions, daemon, tmp_path, stale_after_s=0)
        assert w.run_once()
        status = _status(sessions, request_id)
        assert status["status"] == "done" and status["n_done"] == 4, status
        cut = [e for e in status["experiments"] if e["status"] == "aborted"]
        assert len(cut) == 2 and all("cut off" in (e["error"] or "") for e in cut)
        counted = [e["params"] for e in status["experiments"] if e["status"] in COUNTED]
        assert len(counted) == 4
        assert all(params in counted for params in running)  # both points were measured
        # no point was measured twice
        assert len({tuple(sorted(p.items())) for p in counted}) == 4
    finally:
        daemon.stop()


def test_a_pause_waits_for_the_sample_in_flight_and_resumes_without_repeats(sessions, tmp_path):
    daemon = start_sim_daemon()
    try:
        request_id = _submit(sessions, 5, pipelined=True)
        first = worker(sessions, daemon, tmp_path, paused_retry_s=0)
        first.on_timing = lambda timing: timing.number == 2 and first.request_stop()
        assert first.run_once()
        paused = _status(sessions, request_id)
        # experiment 3 was under way when experiment 2's result asked to stop: it is finished
        # and stored, not dropped
        assert paused["status"] == "paused" and paused["n_done"] == 3, paused
        assert all(e["status"] == "done" for e in paused["experiments"])
        with sessions() as session:
            assert session.get(Request, request_id).optimizer_state["pending"] == []
        assert worker(sessions, daemon, tmp_path).run_once()
        status = _status(sessions, request_id)
        assert status["status"] == "done" and status["n_done"] == 5
        points = [tuple(sorted(e["params"].items())) for e in status["experiments"]]
        assert len(points) == 5 and len(set(points)) == 5
    finally:
        daemon.stop()


def test_a_lab_failure_in_the_measurement_redoes_it_and_the_synthesis_beside_it(
    sessions, tmp_path, monkeypatch
):
    from hardware_interface.sim.errors import NotReadyError

    daemon = start_sim_daemon()
    try:
        world = daemon.lab
        measure = world.measure_cd
        scans = {"n": 0}

        def failing_once(*args, **kwargs):
            scans["n"] += 1
            if scans["n"] == 2:  # experiment 2's scan, while experiment 3 is synthesized
                raise NotReadyError("SPEC1", "the shutter did not open")
            return measure(*args, **kwargs)

        monkeypatch.setattr(world, "measure_cd", failing_once)
        request_id = _submit(sessions, 4, pipelined=True)
        assert worker(sessions, daemon, tmp_path).run_once()
        status = _status(sessions, request_id)
        assert status["status"] == "done" and status["n_done"] == 4, status
        aborted = [e for e in status["experiments"] if e["status"] == "aborted"]
        assert [e["number"] for e in aborted] == [2, 3]
        assert "shutter did not open" in aborted[0]["error"]
        assert aborted[1]["error"] == "cut off: the experiment before it failed in the lab"
        counted = [e for e in status["experiments"] if e["status"] in COUNTED]
        points = [tuple(sorted(e["params"].items())) for e in counted]
        assert len(points) == 4 and len(set(points)) == 4
        for cut in aborted:  # both points were measured after all
            assert tuple(sorted(cut["params"].items())) in points
        # the lab may have been recovered: the next experiment ran the init list (arm home)
        calls = _calls(sessions, request_id)
        redo = min(e["number"] for e in counted if e["number"] > 3)
        moving = [c for c in calls[redo] if c.method not in ("system.status", "pump.stop")]
        assert moving[0].method == "robot.move"  # the init list's, before any pump moves
        assert status["n_lab_failures"] == 1
    finally:
        daemon.stop()
