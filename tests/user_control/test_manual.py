"""Manual control against a real daemon on the simulated lab; the lab is then asked what it did."""

from __future__ import annotations

import csv
import json
import socket
from collections.abc import Iterator

import pytest

from hardware_interface.server import DaemonHandle, start_daemon
from tests.user_control.helpers import run, run_process


@pytest.fixture
def daemon() -> Iterator[DaemonHandle]:
    handle = start_daemon(sim=True, port=0, seed=0, speed=0.0)
    yield handle
    handle.stop()


@pytest.fixture
def hw(daemon, tmp_path):
    """Run a command against ``daemon`` in-process: ``hw("status")``."""

    def call(*argv: str):
        return run(["--hardware-url", daemon.url, *argv], tmp_path)

    return call


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_fill_changes_the_syringe_volume_in_the_lab(daemon, tmp_path):
    result = run_process(
        ["--hardware-url", daemon.url, "pump", "SP1", "fill", "R1", "0.4"], tmp_path
    )
    assert result.status == 0, result.err
    assert daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.4, abs=1e-6)
    assert "0.400 / 0.500 mL Cs-oleate" in result.out


def test_heater_set_reaches_130_and_infuse_empties_the_syringe(daemon, hw):
    assert hw("pump", "SP1", "fill", "Cs-oleate", "0.4").status == 0
    heated = hw("heater", "set", "130", "--ramp", "10")
    assert heated.status == 0, heated.err
    assert daemon.lab.heater_setpoint_C() == pytest.approx(130.0)
    assert "setpoint 130.0 °C" in heated.out and "stable yes" in heated.out
    infused = hw("pump", "SP1", "infuse", "--volume", "0.2", "--rate", "0.5")
    assert infused.status == 0, infused.err
    assert daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.2, abs=1e-6)
    assert "infused 0.200 mL at 0.500 mL/min" in infused.out


def test_emergency_stop_stops_a_running_pump_and_the_heater(daemon, hw):
    assert hw("pump", "SP1", "fill", "R1", "0.4").status == 0
    assert hw("heater", "set", "130").status == 0
    started = hw("pump", "SP1", "infuse", "--volume", "0.3", "--rate", "0.1", "--no-wait")
    assert started.status == 0, started.err
    assert daemon.lab.pump_busy("SP1")
    stopped = hw("stop")
    assert stopped.status == 0, stopped.err
    assert "EMERGENCY STOP" in stopped.out and "SP1" in stopped.out
    assert not daemon.lab.pump_busy("SP1")
    assert daemon.lab.heater_setpoint_C() is None
    status = hw("status")
    assert "FAULT" in status.out and "NOT OK" in status.out
    assert hw("reset").status == 0
    assert "all modules ok" in hw("status").out


def test_refused_command_is_one_line_and_exit_1(daemon, hw):
    refused = hw("heater", "set", "300")
    assert refused.status == 1
    assert refused.err.count("\n") == 1
    assert refused.err.startswith("error: heater.set refused by the hardware daemon (H1, limit")
    assert "300" in refused.err
    assert daemon.lab.heater_setpoint_C() is None


def test_infuse_before_heating_is_refused_as_not_ready(hw):
    assert hw("pump", "SP1", "fill", "R1", "0.2").status == 0
    refused = hw("pump", "SP1", "infuse", "--volume", "0.1", "--rate", "0.5")
    assert refused.status == 1
    assert "(H1, not ready)" in refused.err


def test_unknown_pump_and_wrong_reagent_are_refused(hw):
    unknown = hw("pump", "SP9", "status")
    assert unknown.status == 1 and "(SP9, unknown module)" in unknown.err
    wrong = hw("pump", "SP1", "fill", "PbBr2", "0.1")
    assert wrong.status == 1 and "SP1" in wrong.err and "PbBr2" in wrong.err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["pump", "SP1", "infuse", "--volume", "-0.2", "--rate", "0.5"],
            "must be a finite number > 0",
        ),
        (["pump", "SP1", "infuse", "--volume", "0.2"], "--rate"),
        (["heater", "set", "hot"], "'hot' is not a number"),
        (["measure", "xray"], "invalid choice"),
        (["pump", "SP1", "fill", "R9", "0.1"], "reagent R9: the lab has 3 reagents"),
        (["frobnicate"], "invalid choice"),
        (["--timeout", "-1", "status"], "setting 'timeout_s' from option --timeout"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(hw, argv, needle):
    result = hw(*argv)
    assert result.status == 2
    assert result.err.startswith("error: ")
    assert needle in result.err


def test_unreachable_daemon_exits_3(tmp_path):
    url = closed_port_url()
    result = run_process(["--hardware-url", url, "--retries", "0", "status"], tmp_path)
    assert result.status == 3
    assert (
        result.err.strip()
        == f"error: cannot reach the hardware daemon at {url}: connection refused"
    )


def test_robot_move_through_positions_and_measure_to_csv(daemon, hw, tmp_path):
    moved = hw("robot", "move", "sampler", "cd")
    assert moved.status == 0, moved.err
    assert moved.out.splitlines() == ["robot at sampler", "robot at cd"]
    assert "position cd" in hw("robot", "status").out
    target = tmp_path / "cd.csv"
    measured = hw("measure", "cd", "--integration", "50", "--csv", str(target))
    assert measured.status == 0, measured.err
    rows = list(csv.reader(target.open()))
    assert rows[0][:2] == ["wavelength_nm", "cd_mdeg"]
    assert len(rows) - 1 == 401
    assert f"401 rows written to {target}" in measured.out
    assert "mdeg at" in measured.out and " nm" in measured.out


def test_json_output_and_status_watch(daemon, hw):
    result = hw("--json", "pump", "SP2", "status")
    data = json.loads(result.out)
    assert data["pump"] == "SP2" and data["capacity_mL"] == pytest.approx(0.5)
    watched = hw("status", "--watch", "--interval", "0.01", "--count", "3")
    assert watched.status == 0
    assert watched.out.count("lab clock") == 3
    assert "H1" in watched.out and "volume 0.000 mL" in watched.out


def test_describe_lists_reagents_with_aliases_and_valve(daemon, hw):
    described = hw("describe")
    assert "R1 Cs-oleate" in described.out and "stock 20.000 mL" in described.out
    assert "setpoint [20.0 °C, 200.0 °C]" in described.out
    assert hw("valve", "V1", "open").out.strip() == "V1 open"
    assert "V1 yes" in hw("status").out
    waited = hw("wait", "30")
    assert waited.status == 0 and waited.out.startswith("lab clock ")


def test_parallel_infusion_moves_all_pumps(daemon, hw):
    for pump, reagent in (("SP1", "R1"), ("SP2", "R2"), ("SP3", "R3")):
        assert hw("pump", pump, "fill", reagent, "0.3").status == 0
    assert hw("heater", "set", "110", "--ramp", "20").status == 0
    moved = hw("parallel", "SP1:0.05:0.0125", "SP2:0.1:0.025", "SP3:0.15:0.1")
    assert moved.status == 0, moved.err
    volumes = {p: daemon.lab.syringe_volume_mL(p) for p in ("SP1", "SP2", "SP3")}
    assert volumes == pytest.approx({"SP1": 0.25, "SP2": 0.2, "SP3": 0.15}, abs=1e-6)
    assert moved.out.startswith("infused for 240.0 s")
    bad = hw("parallel", "SP1:0.05")
    assert bad.status == 2 and "expected PUMP:VOLUME_mL:RATE_mL_min" in bad.err


def test_daemon_that_drops_the_call_is_reported_as_lost(tmp_path):
    """A call sent but never answered: exit 3, and the user is told it may have run."""
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"

    def drop_one() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=drop_one, daemon=True)
    thread.start()
    try:
        result = run(["--hardware-url", url, "heater", "set", "130"], tmp_path)
    finally:
        thread.join(timeout=10)
        server.close()
    assert result.status == 3
    assert "stopped answering during heater.set" in result.err
    assert "may or may not have carried it out" in result.err
