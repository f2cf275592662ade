"""Lab configuration parsing, safety checks, the real-lab start with missing devices, the CLI."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hardware_interface import safety
from hardware_interface.errors import AppError
from hardware_interface.labconfig import ConfigError, load_config, parse_config, sim_config_data
from hardware_interface.server import main, start_daemon

EXAMPLES = Path(__file__).resolve().parents[2] / "hardware_interface" / "examples"


def test_example_configs_parse():
    real = load_config(EXAMPLES / "lab_real.json")
    assert real.devices["SP1"].reagent == "Cs-oleate"
    assert real.devices["AB1"].valves == {"V1": 1, "V2": 2}
    assert real.devices["CR1"].port.startswith("tcp://")
    assert real.safety.max_setpoint_C == 190.0
    sim = load_config(EXAMPLES / "lab_sim.json")
    assert {d.kind for d in sim.devices.values()} == {
        "pump", "heater", "board", "robot", "spectrometer"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["devices"]["SP1"].pop("port"), "devices.SP1.port"),
        (lambda d: d["devices"]["SP1"].update(driver="acme_pump"), "devices.SP1.driver"),
        (lambda d: d["devices"]["SP1"].update(reagent="Unobtainium"), "devices.SP1.reagent"),
        (lambda d: d["devices"]["SP1"].update(capacity_mL=-1), "devices.SP1.capacity_mL"),
        (lambda d: d["devices"]["H1"].update(colour="red"), "unknown keys ['colour']"),
        (lambda d: d["safety"].update(max_setpoint_C=300), "safety"),
        (lambda d: d["reagents"].update(ODE=5), "reagents.ODE"),
        (lambda d: d.update(devices={}), "devices"),
    ],
)
def test_bad_config_names_the_path(mutate, message):
    data = copy.deepcopy(sim_config_data("cspbbr3", "x"))
    mutate(data)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data, "lab.json")


def test_unreadable_config(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_safety_checks():
    limits = safety.SafetyLimits(max_setpoint_C=180.0, overtemp_trip_C=190.0, max_flow_mL_min=1.0)
    safety.check_setpoint(limits, "H1", 180.0, 10.0)
    with pytest.raises(AppError) as exc:
        safety.check_setpoint(limits, "H1", 180.5, 10.0)
    assert exc.value.code == -32001 and exc.value.data["module"] == "H1"
    with pytest.raises(AppError, match="rate_mL_min"):
        safety.check_rate(limits, "SP1", 1.5, pump_max=2.0)
    with pytest.raises(AppError, match="over-fill"):
        safety.check_fill("SP1", 0.3, 0.25, 0.5)
    safety.check_fill("SP1", 0.25, 0.25, 0.5)
    with pytest.raises(AppError, match="empty"):
        safety.check_infuse("SP1", 0.0, 0.01)
    with pytest.raises(AppError, match="holds only"):
        safety.check_infuse("SP1", 0.1, 0.2)
    with pytest.raises(AppError) as exc:
        safety.check_heater_ready(limits, "H1", None, False)
    assert exc.value.code == -32007
    relaxed = safety.SafetyLimits(require_stable_heater=False)
    safety.check_heater_ready(relaxed, "H1", None, False)
    assert safety.is_overtemperature(limits, 190.5, False)
    assert safety.is_overtemperature(limits, 25.0, True)
    assert not safety.is_overtemperature(limits, 189.0, False)
    with pytest.raises(ValueError, match="overtemp_trip_C"):
        safety.SafetyLimits(max_setpoint_C=200.0, overtemp_trip_C=150.0)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_lab_with_missing_devices_starts_and_reports_offline(tmp_path):
    data = json.loads((EXAMPLES / "lab_real.json").read_text())
    for dev in data["devices"].values():
        dev["port"] = str(tmp_path / "no-such-tty")
    data["devices"]["CR1"]["port"] = f"tcp://127.0.0.1:{_closed_port()}"
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(data))
    handle = start_daemon(sim=False, port=0, config_path=str(path), watchdog_s=0)
    try:
        body = {"jsonrpc": "2.0", "method": "system.status", "id": 1}
        status = requests.post(handle.url, json=body).json()["result"]
        assert status["ok"] is False
        assert {m["state"] for m in status["modules"].values()} == {"offline"}
        body = {"jsonrpc": "2.0", "method": "heater.status", "id": 2}
        error = requests.post(handle.url, json=body).json()["error"]
        assert error["code"] == -32003 and error["data"]["module"] == "H1"
    finally:
        handle.stop()


def test_cli_argument_errors(capsys):
    assert main([]) == 2
    assert "give --sim or --config" in capsys.readouterr().out
    assert main(["--config", "/nonexistent/lab.json"]) == 1
    assert "cannot read lab config" in capsys.readouterr().out


def test_cli_serves_the_simulated_lab():
    proc = subprocess.Popen(
        [sys.executable, "-m", "hardware_interface", "--sim", "--port", "0", "--log-level",
         "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "serving on http://127.0.0.1:" in line
        url = line.split("serving on ")[1].split()[0]
        body = {"jsonrpc": "2.0", "method": "system.describe", "id": 1}
        assert requests.post(url, json=body, timeout=10).json()["result"]["simulated"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=10)
