"""Fault injection under a running campaign: a serial line that garbles, drops, times out or is
unplugged, and a heater that overshoots its limit. After each: no stored experiment lost or
doubled, and the request either finishes or stops with a reason that names the module."""

from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from maosic.db.models import Experiment, ExperimentStatus
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for

BUDGET = 4
OVERSHOOT_BUDGET = 10


def _submit_and_wait_first(stack, seed: int, budget: int = BUDGET) -> int:
    sub = rpc(stack.core_url, "request.submit", config=cspbbr3_config(), budget=budget, seed=seed)
    deadline = time.monotonic() + 60
    while rpc(stack.core_url, "request.status", id=sub["id"])["n_done"] < 1:
        assert time.monotonic() < deadline, "the first experiment never finished"
        time.sleep(0.01)
    return sub["id"]


def check_experiments(sessions, request_id: int, expect_measured: int) -> list[Experiment]:
    """Numbers 1..n without gaps, no point measured twice, every aborted run redone as is.

    Measured = done, or failed for a chemical reason (no peak to fit): both count in n_done.
    """
    with sessions() as session:
        query = select(Experiment).where(Experiment.request_id == request_id)
        rows = session.scalars(query.order_by(Experiment.number)).all()
        assert [e.number for e in rows] == list(range(1, len(rows) + 1))
        measured = [e for e in rows if e.status in (ExperimentStatus.DONE, ExperimentStatus.FAILED)]
        assert len(measured) == expect_measured, [(e.number, e.status, e.error) for e in rows]
        points = [tuple(sorted(e.params.items())) for e in measured]
        assert len(set(points)) == len(points), "an experiment was stored twice"
        for exp in measured:
            if exp.status == ExperimentStatus.DONE:
                assert sorted(s.kind for s in exp.spectra) == ["absorbance", "cd"]
                assert exp.reward is not None
            else:
                assert exp.error, f"experiment {exp.number} failed without a reason"
        for exp in rows:
            if exp.status == ExperimentStatus.ABORTED:
                assert exp.error, f"experiment {exp.number} aborted without a reason"
                later = [e for e in measured if e.number > exp.number]
                if later:  # measured later with the same parameters (pipelined: not always next)
                    assert exp.params in [e.params for e in later]
        return list(rows)


# module, misbehaviour, how many replies it spoils: 2 is absorbed by the driver's retries (tag
# reuse makes them idempotent), more exhausts them and the module goes offline for a while.
LINE_FAULTS = [
    ("SP2", "drop", 2),
    ("SP1", "garble", 2),
    ("SP1", "garble", 6),
    ("H1", "timeout", 4),
    ("SPEC1", "disconnect", 1),
]


@pytest.mark.parametrize(("module", "kind", "count"), LINE_FAULTS)
def test_serial_line_faults_mid_campaign(fast_stack, sessions, module, kind, count):
    request_id = _submit_and_wait_first(fast_stack, seed=11)
    emulator = fast_stack.daemon.emulators[module]
    emulator.misbehave(kind, count=count)
    seen_paused = None
    deadline = time.monotonic() + 90
    while True:
        status = rpc(fast_stack.core_url, "request.status", id=request_id)
        if status["status"] == "paused" and seen_paused is None:
            seen_paused = status
            if kind == "disconnect":
                emulator.reconnect()  # someone plugs the cable back in
        if status["status"] in ("done", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status["status"] == "done", status
    if seen_paused is not None:
        assert module in seen_paused["failure_reason"], seen_paused
    if kind == "disconnect":
        assert seen_paused is not None, "an unplugged spectrometer must pause the request"
    rows = check_experiments(sessions, request_id, BUDGET)
    for exp in rows:
        if exp.status == ExperimentStatus.ABORTED:
            assert module in exp.error


def _hardware(stack, method: str) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}
    return requests.post(stack.hardware_url, json=body, timeout=30).json()


def test_heater_overshoot_stops_pumps_and_heater_and_pauses(stack, sessions):
    # the ordinary stack: a paused request is retried after 5 s, time for the operator to act
    # enough experiments that heater calls are still to come when the fault is injected (the
    # next synthesis may already have run beside the first measurement)
    request_id = _submit_and_wait_first(stack, seed=12, budget=OVERSHOOT_BUDGET)
    lab = stack.daemon.lab
    lab.inject_overtemperature(80.0)  # the reactor reads 80 °C above the truth: past the trip
    paused = wait_for(stack.core_url, request_id, {"paused", "failed", "done"}, timeout_s=60)
    assert paused["status"] == "paused", paused
    assert "over-temperature" in paused["failure_reason"] and "H1" in paused["failure_reason"]
    # the daemon made the lab safe on its own: heater off, no pump moving
    assert lab.heater_setpoint_C() is None
    assert not any(lab.pump_busy(p) for p in lab.pump_ids)
    h1 = _hardware(stack, "system.status")["result"]["modules"]["H1"]
    assert h1["state"] == "fault" and "over-temperature" in h1["fault"]
    # an operator repairs the thermocouple and clears the latch: the request resumes and ends
    lab.reset_faults()
    assert "cleared" in _hardware(stack, "system.reset_faults")["result"]
    final = wait_for(stack.core_url, request_id, {"done", "failed"}, timeout_s=90)
    assert final["status"] == "done", final
    check_experiments(sessions, request_id, OVERSHOOT_BUDGET)


def test_heater_overshoot_not_repaired_stays_paused_with_its_reason(fast_stack, sessions):
    # A latched safety stop is for an operator to clear: the request waits, retried every
    # paused_retry_s, instead of failing while a person walks to the lab.
    request_id = _submit_and_wait_first(fast_stack, seed=13, budget=OVERSHOOT_BUDGET)
    fast_stack.daemon.lab.inject_overtemperature(80.0)
    paused = wait_for(fast_stack.core_url, request_id, {"paused", "failed", "done"}, timeout_s=90)
    time.sleep(2.0)  # several retries later
    final = wait_for(fast_stack.core_url, request_id, {"paused", "failed", "done"}, timeout_s=90)
    assert paused["status"] == final["status"] == "paused", final
    assert "over-temperature" in final["failure_reason"] and "H1" in final["failure_reason"]
    rows = check_experiments(sessions, request_id, final["n_done"])
    assert final["n_done"] >= 1 and any(e.status == ExperimentStatus.ABORTED for e in rows)
