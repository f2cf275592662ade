"""``steady_state``: in-situ readings repeated while the flow runs until the signal is stable,
the time that took recorded, the last reading used (issue 21). A real daemon on the simulated
cs3cu2i5 lab; its ``last_sample_conditions`` (ground truth the campaign never sees) says
whether the final reading's sample was equilibrated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hardware_interface.server import start_daemon
from maosic.db.models import Experiment, Feature, HardwareCommand
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService, ServiceError
from tests.core.campaign_helpers import worker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cs3cu2i5.json"


@pytest.fixture
def copper_lab():
    handle = start_daemon(sim=True, port=0, chemistry="cs3cu2i5", seed=1, speed=0.0, watchdog_s=0)
    yield handle
    handle.stop()


def _config(steady: dict[str, Any] | None = None) -> dict[str, Any]:
    config = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    config["optimizer"] = "random"
    if steady is not None:
        config["steady_state"] = steady
    return config


def _run_one(sessions, daemon, tmp_path, config: dict[str, Any]) -> tuple[Experiment, dict]:
    """Run a one-experiment request; its experiment, features and daemon methods called."""
    sub = CoreService(sessions).submit(INSTALLATION, config=config, budget=1, seed=5)
    assert worker(sessions, daemon, tmp_path).run_once()
    with sessions() as session:
        experiment = session.scalars(
            select(Experiment).where(Experiment.request_id == sub["id"])
        ).one()
        features = {
            f.name: f.value
            for f in session.scalars(select(Feature).where(Feature.experiment_id == experiment.id))
        }
        methods = list(
            session.scalars(
                select(HardwareCommand.method)
                .where(HardwareCommand.experiment_id == experiment.id)
                .order_by(HardwareCommand.id)
            )
        )
        session.expunge(experiment)
    return experiment, {"features": features, "methods": methods}


def test_readings_repeat_while_the_flow_runs_until_steady(sessions, copper_lab, tmp_path):
    # The first reading 20 s into the flow sees what the tube held before (priming solvent):
    # the readings go on every 20 s until three agree within 3 %.
    steady = {"tolerance_pct": 3.0, "interval_s": 20, "window": 3, "max_readings": 19}
    experiment, got = _run_one(sessions, copper_lab, tmp_path, _config({**steady, "start_s": 20}))
    features, methods = got["features"], got["methods"]
    assert experiment.status.value == "done" and experiment.error is None
    readings = int(features["steady_readings"])
    assert readings > steady["window"]  # not steady at first: more than one window
    assert readings < steady["max_readings"]
    assert features["steady_state_reached"] == 1.0
    assert features["steady_change_pct"] <= steady["tolerance_pct"]
    # from the flow's start to the last reading, on the lab clock
    assert features["steady_state_s"] == pytest.approx(20 + 20 * (readings - 1), abs=1.0)
    # the experiment's lab time covers the readings and the rest of the infusion (400 s)
    assert experiment.lab_time_s > max(features["steady_state_s"], 400.0)
    # every reading is in the audit log, taken while the infusion (started without waiting)
    # ran; the pumps finished their volumes before the experiment ended
    assert methods.count("spectrometer.pl") == readings
    assert methods.index("pump.parallel") < methods.index("spectrometer.pl")
    assert methods.count("system.wait") >= readings
    truth = copper_lab.lab.last_sample_conditions()
    assert truth is not None and truth["equilibrated"] is True
    assert not any(copper_lab.lab.pump_busy(p) for p in copper_lab.lab.pump_ids)


def test_without_steady_state_one_reading_after_the_flow(sessions, copper_lab, tmp_path):
    experiment, got = _run_one(sessions, copper_lab, tmp_path, _config())
    assert experiment.status.value == "done" and experiment.error is None
    assert got["methods"].count("spectrometer.pl") == 1
    assert "system.wait" not in got["methods"]
    assert not any(name.startswith("steady") for name in got["features"])


def test_not_steady_within_max_readings_is_said(sessions, copper_lab, tmp_path):
    steady = {"tolerance_pct": 1e-6, "interval_s": 10, "window": 2, "max_readings": 3}
    experiment, got = _run_one(sessions, copper_lab, tmp_path, _config(steady))
    features = got["features"]
    assert experiment.status.value == "done"  # measured, but not pretending it was steady
    assert experiment.error is not None and experiment.error.startswith("not steady")
    assert "max_readings (3)" in experiment.error
    assert features["steady_state_reached"] == 0.0
    assert features["steady_readings"] == 3.0 and features["steady_state_s"] is None
    assert got["methods"].count("spectrometer.pl") == 3


def test_readings_stop_when_the_flow_ends(sessions, copper_lab, tmp_path):
    # 15 s of pumping (less than the fastest fluid takes through the coil): the flow ends
    # before the product
    # reached the cell; no reading is taken of the stopped cell.
    config = _config({"interval_s": 3, "window": 3, "max_readings": 20, "start_s": 3})
    config["param"]["t_eq"]["default"] = 15.0
    experiment, got = _run_one(sessions, copper_lab, tmp_path, config)
    # nothing was made yet: the last reading has no peak (a failed experiment), and the
    # error says the readings never got steady
    assert experiment.status.value == "failed"
    assert experiment.error is not None and "not steady" in experiment.error
    assert "the flow ended" in experiment.error
    assert got["methods"].count("spectrometer.pl") == 5  # at 3, 6, 9, 12, 15 s
    assert not any(copper_lab.lab.pump_busy(p) for p in copper_lab.lab.pump_ids)


@pytest.mark.parametrize(
    ("steady", "key"),
    [
        ({"interval_s": -30}, "steady_state.interval_s"),
        ({"tolerance_pct": 0}, "steady_state.tolerance_pct"),
        ({"tolerance": 2.0}, "'tolerance'"),
        ({"window": 1}, "steady_state.window"),
        ({"window": 4, "max_readings": 3}, "steady_state.max_readings"),
        ("yes", "'steady_state'"),
    ],
)
def test_a_bad_steady_state_is_refused_at_submission(sessions, steady, key):
    with pytest.raises(ServiceError) as err:
        CoreService(sessions).submit(INSTALLATION, config=_config(steady), budget=1)
    assert err.value.field == "config" and key in err.value.message
