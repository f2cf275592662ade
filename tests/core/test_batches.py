"""``nreq``: one optimizer call proposes a batch of points, run one after another, each told
as it arrives; batches survive pauses and crashes without losing or repeating a point, and
``request.status`` says which call proposed each experiment (issue 19)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from maosic.campaign import Campaign, LabFailure
from maosic.db.models import Experiment, ExperimentStatus, Request
from maosic.optimize.simple import RandomSearch
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from tests.core.campaign_helpers import AskSpy, config_with, start_sim_daemon, worker

COUNTED = ("done", "failed")


@pytest.fixture
def sim_daemon():
    handle = start_sim_daemon()
    yield handle
    handle.stop()


class Crash(BaseException):
    """The core process dying mid-experiment (not an Exception: nothing may handle it)."""


def _submit(sessions, nreq: int, budget: int) -> int:
    # One experiment at a time: these tests inject faults into that path (Campaign._execute);
    # the pipelined path's crash and pause are tested in tests/core/test_pipeline.py.
    config = config_with(optimizer="random", nreq=nreq, pipeline=False)
    return CoreService(sessions).submit(INSTALLATION, config=config, budget=budget, seed=3)["id"]


def _status(sessions, request_id: int) -> dict:
    return CoreService(sessions).status(INSTALLATION, request_id, experiments=True)


def _counted(status: dict) -> list[dict]:
    return [e for e in status["experiments"] if e["status"] in COUNTED]


@pytest.mark.parametrize(
    ("nreq", "budget", "sizes"),
    [(4, 8, [4, 4]), (4, 6, [4, 2]), (1, 3, [1, 1, 1])],
)
def test_a_batch_is_one_ask_run_point_by_point(
    sessions, sim_daemon, tmp_path, monkeypatch, nreq, budget, sizes
):
    spy = AskSpy(monkeypatch, RandomSearch)
    told: list[int] = []
    tell = RandomSearch.tell

    def counting_tell(opt, points, *args):
        told.append(len(points))
        return tell(opt, points, *args)

    monkeypatch.setattr(RandomSearch, "tell", counting_tell)
    request_id = _submit(sessions, nreq, budget)
    assert worker(sessions, sim_daemon, tmp_path).run_once()

    status = _status(sessions, request_id)
    assert status["status"] == "done" and status["n_done"] == budget
    assert status["batch_size"] == nreq
    # the budget caps the last batch: never more points than experiments left
    assert [n for n, _ in spy.calls] == sizes and spy.sizes == sizes
    assert told == [1] * budget  # each result told as it arrives
    experiments = _counted(status)
    assert [e["params"] for e in experiments] == spy.points
    expected = [i + 1 for i, size in enumerate(sizes) for _ in range(size)]
    assert [e["batch"] for e in experiments] == expected


def test_nreq_0_is_the_optimizers_own_batch_size(sessions, sim_daemon, tmp_path, monkeypatch):
    assert RandomSearch.default_batch == 1
    assert _status(sessions, _submit(sessions, 0, 2))["batch_size"] == 1
    monkeypatch.setattr(RandomSearch, "default_batch", 3)
    spy = AskSpy(monkeypatch, RandomSearch)
    request_id = _submit(sessions, 0, 5)
    assert _status(sessions, request_id)["batch_size"] == 3
    CoreService(sessions).cancel(INSTALLATION, request_id - 1)  # it would run first
    w = worker(sessions, sim_daemon, tmp_path)
    while w.run_once():
        pass
    assert spy.sizes == [3, 2]
    assert [e["batch"] for e in _counted(_status(sessions, request_id))] == [1, 1, 1, 2, 2]


def test_a_pause_mid_batch_resumes_with_the_batchs_remaining_points(
    sessions, sim_daemon, tmp_path, monkeypatch
):
    spy = AskSpy(monkeypatch, RandomSearch)
    request_id = _submit(sessions, 4, 8)
    first = worker(sessions, sim_daemon, tmp_path, paused_retry_s=0)
    first.on_timing = lambda timing: timing.number == 2 and first.request_stop()
    assert first.run_once()
    paused = _status(sessions, request_id)
    assert paused["status"] == "paused" and paused["n_done"] == 2
    with sessions() as session:  # the checkpoint keeps the batch's two points not yet run
        state = session.get(Request, request_id).optimizer_state
        assert len(state["pending"]) == 2

    assert worker(sessions, sim_daemon, tmp_path).run_once()
    status = _status(sessions, request_id)
    assert status["status"] == "done" and status["n_done"] == 8
    assert spy.sizes == [4, 4]  # the batch was finished, not asked again
    assert [e["params"] for e in _counted(status)] == spy.points
    assert [e["batch"] for e in _counted(status)] == [1] * 4 + [2] * 4


@pytest.mark.parametrize(
    ("crash_at", "asks"),
    [
        (3, [4, 4]),  # mid-batch: the checkpoint holds points 3 and 4 of batch 1
        (5, [4, 4, 4]),  # in a batch's first point: nothing pending, the batch is asked again
    ],
)
def test_a_crash_mid_batch_loses_and_repeats_no_point(
    sessions, sim_daemon, tmp_path, monkeypatch, crash_at, asks
):
    spy = AskSpy(monkeypatch, RandomSearch)
    request_id = _submit(sessions, 4, 8)
    execute = Campaign._execute
    runs = {"n": 0}

    def dying(self, *args, **kwargs):
        runs["n"] += 1
        if runs["n"] == crash_at:
            raise Crash()
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(Campaign, "_execute", dying)
    with pytest.raises(Crash):
        worker(sessions, sim_daemon, tmp_path).run_once()
    assert worker(sessions, sim_daemon, tmp_path, stale_after_s=0).run_once()

    status = _status(sessions, request_id)
    assert status["status"] == "done" and status["n_done"] == 8
    assert spy.sizes == asks
    batches = [points for _, points in spy.calls]
    if len(asks) == 3:  # the repeated ask proposed the same batch again
        assert batches[2] == batches[1]
        batches = batches[:2]
    counted = _counted(status)
    assert [e["params"] for e in counted] == [p for points in batches for p in points]
    assert [e["batch"] for e in counted] == [1] * 4 + [2] * 4
    with sessions() as session:
        cut = session.scalars(
            select(Experiment).where(
                Experiment.request_id == request_id,
                Experiment.status == ExperimentStatus.ABORTED,
            )
        ).one()
        assert cut.number == crash_at and cut.failure_kind == "cut off"
        redone = counted[crash_at - 1]  # the next row ran the same point, in the same batch
        assert (cut.params, cut.batch) == (redone["params"], redone["batch"])


def test_a_point_the_lab_loses_mid_batch_is_run_again_in_its_batch(
    sessions, sim_daemon, tmp_path, monkeypatch
):
    spy = AskSpy(monkeypatch, RandomSearch)
    request_id = _submit(sessions, 3, 3)
    execute = Campaign._execute
    runs = {"n": 0}

    inits: list[bool] = []

    def refusing_once(self, *args, **kwargs):
        runs["n"] += 1
        inits.append(kwargs["include_init"])
        if runs["n"] == 2:
            raise LabFailure("the lab refused a command: pump stalled")
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(Campaign, "_execute", refusing_once)
    assert worker(sessions, sim_daemon, tmp_path).run_once()
    status = _status(sessions, request_id)
    assert status["status"] == "done" and status["n_done"] == 3 and spy.sizes == [3]
    rows = status["experiments"]
    assert [(e["status"], e["batch"]) for e in rows] == [("done", 1), ("aborted", 1)] + [
        ("done", 1)
    ] * 2
    assert rows[1]["params"] == rows[2]["params"] == spy.points[1]
    assert [e["params"] for e in _counted(status)] == spy.points
    # the init list runs before the first experiment and again before the retried point: the
    # lab may have been recovered after its failure (issue 19)
    assert inits == [True, False, True, False]
