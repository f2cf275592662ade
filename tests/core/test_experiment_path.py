"""The per-experiment path: batched daemon calls, a complete audit log, phase timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from hardware_interface.server import start_daemon
from maosic.batching import HARMLESS_METHODS, group_calls
from maosic.campaign import _fit_values
from maosic.db.crypto import LogCipher
from maosic.db.models import Experiment, ExperimentStatus, HardwareCommand, Request
from maosic.language.compiler import compile_config
from maosic.language.config import load_config
from maosic.phases import PHASES, ExperimentTiming
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from maosic.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
ACTING = ["pump.fill", "heater.set", "pump.parallel", "robot.move", "spectrometer.cd"]


@given(st.lists(st.sampled_from(sorted(HARMLESS_METHODS) + ACTING), max_size=30))
def test_a_round_trip_holds_at_most_one_acting_call_and_it_comes_first(methods):
    calls = [{"method": m, "params": {"i": i}} for i, m in enumerate(methods)]
    groups = group_calls(calls)
    assert [c for g in groups for c in g] == calls  # same calls, same order
    for group in groups:
        assert group, "no empty round trip"
        assert all(c["method"] in HARMLESS_METHODS for c in group[1:])
    # every acting call opens its own round trip, so nothing acts after a failed call
    assert sum(1 for m in methods if m not in HARMLESS_METHODS) == sum(
        1 for g in groups if g[0]["method"] not in HARMLESS_METHODS
    )


def test_the_cspbbr3_experiment_needs_fewer_round_trips_than_calls():
    config = load_config(json.loads((ROOT / "examples" / "cspbbr3.json").read_text()))
    plan = compile_config(config).plan({"T": 130.0, "C": 0.8})
    clock = {"method": "system.status", "params": {}}
    groups = group_calls([clock, *plan, clock])
    assert len(plan) == 13
    # status + the three PUMP_INIT stops in one, the last move + status in another
    assert len(groups) == len(plan) + 2 - 4
    assert [c["method"] for c in groups[0]] == ["system.status"] + ["pump.stop"] * 3
    assert [c["method"] for c in groups[-1]] == ["robot.move", "system.status"]


@pytest.fixture
def sim_daemon():
    handle = start_daemon(sim=True, port=0, seed=1, speed=0.0, watchdog_s=0)
    yield handle
    handle.stop()


def test_campaign_stores_every_call_and_reports_its_phases(sessions, sim_daemon, tmp_path):
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text())
    sub = CoreService(sessions).submit(
        INSTALLATION, config=config, budget=3, optimizer="random", seed=5
    )
    timings: list[ExperimentTiming] = []
    cipher = LogCipher.from_file(tmp_path / "log.key")
    worker = Worker(sessions, sim_daemon.url, cipher, poll_s=0.01, on_timing=timings.append)
    assert worker.run_once()

    program = compile_config(load_config(config))
    plan_methods = [c["method"] for c in program.plan({"T": 130.0, "C": 0.8})]
    init_methods = [c["method"] for c in program.plan({"T": 130.0, "C": 0.8}, include_init=True)][
        : -len(plan_methods)
    ]
    assert init_methods  # the CsPbBr3 configuration has an init list
    expected = ["system.status", *plan_methods, "system.status"]
    with sessions() as session:
        request = session.get(Request, sub["id"])
        assert request.n_done == 3 and request.status.value == "done"
        experiments = session.scalars(
            select(Experiment).where(Experiment.request_id == sub["id"]).order_by(Experiment.number)
        ).all()
        assert [e.status for e in experiments] == [ExperimentStatus.DONE] * 3
        for exp in experiments:
            commands = session.scalars(
                select(HardwareCommand)
                .where(HardwareCommand.experiment_id == exp.id)
                .order_by(HardwareCommand.id)
            ).all()
            # the audit log holds every call the experiment ran, in order, encrypted; the
            # configuration's init list runs once, before the first experiment
            init = init_methods if exp.number == 1 else []
            assert [c.method for c in commands] == ["system.status", *init, *expected[1:]]
            assert all(c.ok and c.duration_ms > 0 for c in commands)
            assert [c.sent_at for c in commands] == sorted(c.sent_at for c in commands)
            heat = next(c for c in commands if c.method == "heater.set")
            assert cipher.decrypt_json(heat.params_enc)["setpoint_C"] == exp.params["T"]
            assert exp.lab_time_s is not None and exp.lab_time_s > 60
            assert {s.kind for s in exp.spectra} == {"absorbance", "cd"}
            assert all(len(s.fits) == 1 for s in exp.spectra)
            assert exp.features and exp.reward is not None
        assert request.best_reward == max(e.reward for e in experiments)

    assert [t.number for t in timings] == [1, 2, 3]
    for timing in timings:
        assert set(timing.phases_ms) <= set(PHASES)
        assert {"ask", "begin", "daemon", "analysis", "store"} <= set(timing.phases_ms)
        init = init_methods if timing.number == 1 else []
        calls = ["system.status", *init, *expected[1:]]
        assert [m for m, _ in timing.calls] == calls
        if init:
            assert timing.round_trips < len(calls)  # the init list is batched too
        else:
            assert timing.round_trips == len(expected) - 4  # batched, see the test above
        assert timing.total_ms >= sum(timing.phases_ms.values()) > 0
        assert timing.other_ms >= 0


def test_a_degenerate_fit_is_stored_with_nulls_not_lost():
    # MySQL's FLOAT and JSON hold no NaN or infinity; the insert would fail and, with it, the
    # experiment's whole result transaction.
    fit = {
        "shape": "gaussian",
        "peaks": [{"centre_nm": 450.0, "area": float("nan")}],
        "baseline": [0.1, float("inf")],
        "r2": 0.5,
        "rmse": float("nan"),
        "bic": float("inf"),
    }
    values = _fit_values(fit)
    assert values["bic"] is None and values["rmse"] is None and values["r2"] == 0.5
    assert values["peaks"] == [{"centre_nm": 450.0, "area": None}]
    assert values["baseline"]["coefficients"] == [0.1, None]
    json.dumps(values, allow_nan=False)  # valid JSON throughout


def test_patience_stops_the_campaign_when_the_best_is_that_old(sessions, sim_daemon, tmp_path):
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text())
    # One at a time: pipelined, the experiment already under way when the stop is known is
    # finished too (tests/core/test_pipeline.py), so the stop comes one experiment later.
    config["pipeline"] = False
    target = {"metric": "max_abs_cd_at_exciton", "patience": 2}
    sub = CoreService(sessions).submit(
        INSTALLATION, config=config, target=target, budget=30, optimizer="random", seed=11
    )
    worker = Worker(sessions, sim_daemon.url, LogCipher.from_file(tmp_path / "k"), poll_s=0.01)
    assert worker.run_once()
    with sessions() as session:
        request = session.get(Request, sub["id"])
        rewards = list(
            session.scalars(
                select(Experiment.reward)
                .where(Experiment.request_id == sub["id"])
                .order_by(Experiment.number)
            )
        )
    assert request.stop_reason == "no improvement in the last 2 experiments"
    best_at = max((r, i) for i, r in enumerate(rewards))[1]
    assert len(rewards) - 1 - best_at == 2  # stopped at the first chance, not later
    assert request.best_reward == max(rewards)
