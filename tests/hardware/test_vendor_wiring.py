"""The vendors' instruments wired into the daemon (issue 23): the Windows start path, the JASCO
J-1500 and the Robotiq 2F-85 in lab files, each driven over real HTTP JSON-RPC."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from hardware_interface.labconfig import ConfigError, parse_config
from hardware_interface.server import start_daemon
from hardware_interface.sim.emulators.lab import CUVETTE_GRIP_POSITION
from hardware_interface.sim.emulators.robotiq import MIN_POSITION

ROOT = Path(__file__).resolve().parents[2]
MAOSIC_SIM = ROOT / "hardware_interface/examples/lab_maosic_sim.json"
MAOSIC_WINDOWS = ROOT / "hardware_interface/examples/lab_maosic_windows.json"
JASCO_EMULATOR = ROOT / "hardware_interface/sim/emulators/jasco.py"


def rpc(url: str, method: str, epoch: int | None = None, **params):
    headers = {} if epoch is None else {"X-MAOSIC-Lease": str(epoch)}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(url, json=body, headers=headers, timeout=60).json()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


# -- 1. the start path on Windows -----------------------------------------------------------------
# Run before anything else in a fresh interpreter: the POSIX-only modules cannot be imported
# (None in sys.modules makes any import of them raise ImportError). pyserial picks its platform
# backend at import time: serialposix (which needs termios and fcntl) here, serialwin32 on
# Windows. The stand-in below takes serialwin32's place and behaves as it does for a COM port that
# is not there (SerialException on open); everything else is the real daemon, drivers and pymodbus.
WINDOWS_PRELUDE = r"""
import atexit, sys, types
POSIX_ONLY = ("resource", "termios", "pty", "tty", "fcntl")
for name in POSIX_ONLY:
    sys.modules[name] = None
_backend = types.ModuleType("serial.serialposix")
_classes = []


def _serial_class(name):
    if name not in ("Serial", "PosixPollSerial", "VTIMESerial"):
        raise AttributeError(name)
    if not _classes:
        from serial.serialutil import SerialBase, SerialException

        class Serial(SerialBase):
            def open(self):
                raise SerialException(f"could not open port {self.port!r}: FileNotFoundError")

        _classes.append(Serial)
    return _classes[0]


_backend.__getattr__ = _serial_class
sys.modules["serial.serialposix"] = _backend
atexit.register(lambda: print("sim modules:", sorted(m for m in sys.modules
                                                    if m.startswith("hardware_interface.sim"))))
from hardware_interface.server import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_daemon_starts_and_serves_without_posix_only_modules(tmp_path):
    data = json.loads(MAOSIC_WINDOWS.read_text(encoding="utf-8"))
    port = closed_port()
    for dev in data["devices"].values():  # no traffic beyond this machine: a closed local port
        if dev.get("port", "").startswith("tcp://"):
            dev["port"] = f"tcp://127.0.0.1:{port}"
    lab = tmp_path / "lab.json"
    lab.write_text(json.dumps(data), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", WINDOWS_PRELUDE, "--config", str(lab), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    killer = threading.Timer(120.0, proc.kill)  # a hung start fails the test, never hangs it
    killer.start()
    try:
        first = proc.stdout.readline()
        assert first.startswith("hardware daemon serving on http://127.0.0.1:"), (
            first + proc.stderr.read()
        )
        url = first.split(" on ")[1].split()[0]
        modules = rpc(url, "system.describe")["result"]["modules"]
        assert modules["SP1"]["port"] == "COM3" and modules["GR1"]["kind"] == "gripper"
        assert modules["CD1"]["measures"] == ["absorbance", "cd"]
        status = rpc(url, "system.status")["result"]["modules"]
        # no COM port exists here, the TCP port is closed and the JASCO export folder is a
        # Windows path: every device is offline (retried on its next use), the daemon serves
        offline = sorted(m for m, s in status.items() if s["state"] == "offline")
        assert offline == ["AB1", "CD1", "CR1", "GR1", "H1", "SP1", "SP2", "SP3", "V1", "V2"]
        assert "COM8" in status["GR1"]["fault"] and "export folder" in status["CD1"]["fault"]
        reply = rpc(url, "gripper.status")
        assert reply["error"]["code"] == -32003, reply
        proc.send_signal(signal.SIGTERM)  # the service manager's stop: leaves the lab safe
        out, err = proc.communicate(timeout=60)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert "ModuleNotFoundError" not in err and "ImportError" not in err
    # the simulator (and with it the pseudo-terminal bridge) was never imported
    assert out.strip().splitlines()[-1] == "sim modules: []"


def test_the_sim_without_pty_does_not_import_the_pty_bridge():
    code = (
        "import sys\n"
        "for name in ('pty', 'tty'):\n"
        "    sys.modules[name] = None\n"
        "from hardware_interface.server import start_daemon\n"
        "handle = start_daemon(sim=True, port=0, watchdog_s=0)\n"
        "handle.stop()\n"
        "bridge = 'hardware_interface.sim.emulators.pty_bridge'\n"
        "print('pty bridge loaded:', bridge in sys.modules)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "pty bridge loaded: False"


# -- 2. the JASCO J-1500 in a lab file ------------------------------------------------------------
def jasco_lab(tmp_path: Path, export: Path, **device) -> Path:
    """A lab file naming only a J-1500 whose measurement command is the JASCO emulator."""
    command = [sys.executable, str(JASCO_EMULATOR), str(export), "--pause", "0.2"]
    entry = {"driver": "jasco_j1500", "export_dir": str(export), "command": command,
             "timeout_s": 20.0, "settle_s": 0.3, **device}  # fmt: skip
    lab = tmp_path / "lab_jasco.json"
    lab.write_text(json.dumps({"lab": "J-1500 bench", "devices": {"CD1": entry}}), "utf-8")
    return lab


def test_a_jasco_lab_file_answers_spectrometer_cd_over_http(tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    handle = start_daemon(sim=False, port=0, watchdog_s=0, config_path=str(jasco_lab(tmp_path,
                          export)))  # fmt: skip
    try:
        module = rpc(handle.url, "system.describe")["result"]["modules"]["CD1"]
        assert module["kind"] == "spectrometer" and module["driver"] == "jasco_j1500"
        assert module["measures"] == ["absorbance", "cd"]
        first = rpc(handle.url, "spectrometer.cd", integration_ms=100)
        assert "error" not in first, first
        cd = first["result"]
        assert cd["module"] == "CD1" and len(cd["wavelength_nm"]) == 301
        assert cd["wavelength_nm"][0] == 300.0 and cd["wavelength_nm"][-1] == 600.0
        assert cd["ht_max_V"] == pytest.approx(400.0) and cd["saturated"] is False
        assert len(cd["absorbance"]) == 301
        # the positive lobe of the emulated exciton couplet lies red of 450 nm
        assert cd["cd_mdeg"][cd["wavelength_nm"].index(461.0)] > 0.5
        # the absorbance channel of the same export answers spectrometer.absorbance
        absorbance = rpc(handle.url, "spectrometer.absorbance")["result"]["absorbance"]
        assert max(absorbance) == pytest.approx(0.325, abs=0.01)
        # each call took a new export: the earlier ones are stale
        assert len(list(export.glob("*.txt"))) == 2
        reply = rpc(handle.url, "spectrometer.cd", integration_ms=0.5)
        assert reply["error"]["code"] == -32001 and "integration_ms" in reply["error"]["message"]
        assert len(list(export.glob("*.txt"))) == 2  # refused before anything was triggered
    finally:
        handle.stop()


def test_a_jasco_whose_software_exports_nothing_times_out_and_a_missing_folder_is_offline(
    tmp_path,
):
    export = tmp_path / "export"
    export.mkdir()
    lab = jasco_lab(tmp_path, export, command=[sys.executable, "-c", "pass"], timeout_s=0.8)
    handle = start_daemon(sim=False, port=0, watchdog_s=0, config_path=str(lab))
    try:
        reply = rpc(handle.url, "spectrometer.cd")
        assert reply["error"]["code"] == -32003, reply
        assert "no new file in the export folder" in reply["error"]["message"]
    finally:
        handle.stop()
    lab = jasco_lab(tmp_path, tmp_path / "not_there")
    handle = start_daemon(sim=False, port=0, watchdog_s=0, config_path=str(lab))
    try:
        reply = rpc(handle.url, "spectrometer.cd")
        assert reply["error"]["code"] == -32003 and "does not exist" in reply["error"]["message"]
    finally:
        handle.stop()


def test_jasco_lab_file_keys():
    def lab(**device):
        return {"devices": {"CD1": {"driver": "jasco_j1500", **device}}}

    cfg = parse_config(lab(export_dir="C:\\x", command=["spectra.exe", "/run"])).devices["CD1"]
    assert (cfg.kind, cfg.port, cfg.command, cfg.timeout_s) == (
        "spectrometer", "", ("spectra.exe", "/run"), 540.0,
    )  # fmt: skip
    cfg = parse_config(lab(export_dir="e", macro_file="m.mcr", macro_dir="in", settle_s=5,
                           timeout_s=300)).devices["CD1"]  # fmt: skip
    assert (cfg.macro_file, cfg.macro_dir, cfg.settle_s, cfg.timeout_s) == ("m.mcr", "in", 5, 300)
    with pytest.raises(ConfigError, match="CD1.export_dir"):
        parse_config(lab(command=["x"]))
    with pytest.raises(ConfigError, match="exactly one trigger"):
        parse_config(lab(export_dir="e", command=["x"], macro_file="m", macro_dir="d"))
    with pytest.raises(ConfigError, match="exactly one trigger"):
        parse_config(lab(export_dir="e"))
    with pytest.raises(ConfigError, match="CD1.macro_dir"):
        parse_config(lab(export_dir="e", macro_file="m"))
    with pytest.raises(ConfigError, match="CD1.command"):
        parse_config(lab(export_dir="e", command="spectra.exe /run"))
    with pytest.raises(ConfigError, match="jasco_j1500 only"):
        parse_config({"devices": {"X": {"driver": "mcd1_cd_spectrometer", "port": "COM3",
                                        "export_dir": "e"}}})  # fmt: skip


# -- 3. the gripper's JSON-RPC methods -----------------------------------------------------------
@pytest.fixture()
def maosic_rig():
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0, config_path=str(MAOSIC_SIM))
    yield handle
    handle.stop()


def test_gripper_is_described_with_its_ranges(maosic_rig):
    module = rpc(maosic_rig.url, "system.describe")["result"]["modules"]["GR1"]
    assert module["kind"] == "gripper" and "valves" not in module
    assert module["limits"] == {"position": [0, 255], "speed": [0, 255], "force": [0, 255]}
    assert "0 open, 255 closed" in module["units"]["position"]


def test_gripper_activate_grip_move_stop_against_the_robotiq_emulator(maosic_rig):
    url, emulator = maosic_rig.url, maosic_rig.emulators["GR1"]
    status = rpc(url, "gripper.status")["result"]
    assert status["activated"] is False and status["activation"] == "reset"
    reply = rpc(url, "gripper.grip", closed=True)
    assert reply["error"]["code"] == -32007 and "gripper.activate" in reply["error"]["message"]
    assert emulator.output == [0, 0, 0]  # nothing was sent
    status = rpc(url, "gripper.activate")["result"]
    assert status["activated"] is True and status["state"] == "ok"
    # closing on the simulated cuvette: the fingers stop on it (gOBJ 2)
    held = rpc(url, "gripper.grip", closed=True)["result"]
    assert held["position"] == CUVETTE_GRIP_POSITION and held["position_request"] == 255
    assert held["object"] == "contact while closing" and held["object_detected"] is True
    opened = rpc(url, "gripper.grip", closed=False)["result"]
    assert opened["position"] == MIN_POSITION and opened["object"] == "at requested position"
    moved = rpc(url, "gripper.move", position=100, speed=10, force=50)["result"]
    assert moved["position"] == 100 and not moved["busy"]
    # rACT|rGTO, then rPR, then rSP<<8 | rFR in the output registers ([2F-IM] layout)
    assert emulator.output == [0x0900, 100, 10 << 8 | 50]
    stopped = rpc(url, "gripper.stop")["result"]
    assert emulator.output == [0x0100, 0, 0] and stopped["activated"] is True
    status = rpc(url, "system.status")["result"]["modules"]["GR1"]
    assert status == {"state": "ok", "fault": None, "position": 100}


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"position": 256}, -32001, "position = 256 counts outside the safety limits [0, 255]"),
        ({"position": -1}, -32001, "position = -1 counts"),
        ({"position": 10, "speed": 300}, -32001, "speed = 300 counts"),
        ({"position": 10, "force": -5}, -32001, "force = -5 counts"),
        ({"position": 12.5}, -32602, "'position' must be integer"),
        ({"position": True}, -32602, "'position' must be integer"),
    ],
)
def test_gripper_move_is_range_checked_in_the_daemon(maosic_rig, params, code, words):
    url, emulator = maosic_rig.url, maosic_rig.emulators["GR1"]
    assert "error" not in rpc(url, "gripper.activate")
    before = list(emulator.output)
    error = rpc(url, "gripper.move", **params)["error"]
    assert error["code"] == code, error
    assert words in (error["message"] if code != -32602 else error["data"])
    assert emulator.output == before  # refused before anything reached the gripper


def test_gripper_status_is_open_to_all_and_moves_need_the_lease(maosic_rig):
    url = maosic_rig.url
    epoch = rpc(url, "lease.acquire", holder="core-1")["result"]["epoch"]
    assert rpc(url, "gripper.status")["result"]["module"] == "GR1"  # a read: no lease needed
    for method, params in (("gripper.activate", {}), ("gripper.grip", {"closed": True}),
                           ("gripper.move", {"position": 50}), ("gripper.stop", {})):  # fmt: skip
        reply = rpc(url, method, **params)
        assert reply["error"]["code"] == -32008, (method, reply)
    assert rpc(url, "gripper.activate", epoch=epoch)["result"]["activated"] is True
    assert rpc(url, "gripper.grip", epoch=epoch, closed=True)["result"]["object_detected"]


def test_gripper_over_a_pseudo_terminal_the_os_serial_path():
    handle = start_daemon(sim=True, sim_pty=True, port=0, seed=1, watchdog_s=0,
                          config_path=str(MAOSIC_SIM))  # fmt: skip
    try:
        assert handle.daemon.config.devices["GR1"].port.startswith("/dev/")
        assert rpc(handle.url, "gripper.activate")["result"]["activated"] is True
        held = rpc(handle.url, "gripper.grip", closed=True)["result"]
        assert held["position"] == CUVETTE_GRIP_POSITION and held["object_detected"] is True
        assert handle.emulators["GR1"].output == [0x0900, 255, 255 << 8 | 128]
    finally:
        handle.stop()


def test_gripper_fault_is_reported_and_cleared_by_activation(maosic_rig):
    url, emulator = maosic_rig.url, maosic_rig.emulators["GR1"]
    assert rpc(url, "gripper.activate")["result"]["activated"] is True
    emulator._fault = 0x0B  # fault injection: the gripper reports gFLT 0x0B
    assert rpc(url, "gripper.status")["result"]["fault_code"] == 0x0B
    error = rpc(url, "gripper.grip", closed=True)["error"]
    assert error["code"] == -32000 and error["data"]["fault_code"] == 0x0B
    assert "gFLT 0x0B" in error["message"] and "gripper.activate" in error["message"]
    assert emulator.output[0] == 0x0100  # the move was not sent
    status = rpc(url, "gripper.activate")["result"]
    assert status["fault_code"] == 0 and status["activated"] is True
    assert rpc(url, "gripper.grip", closed=True)["result"]["object_detected"] is True


def test_gripper_stop_sends_nothing_to_a_gripper_that_is_not_activated(maosic_rig):
    url, emulator = maosic_rig.url, maosic_rig.emulators["GR1"]
    status = rpc(url, "gripper.stop")["result"]
    assert status["activated"] is False and emulator.output == [0, 0, 0]
    assert rpc(url, "gripper.status")["result"]["activation"] == "reset"


def test_an_emergency_stop_does_not_stroke_an_idle_gripper(maosic_rig):
    # system.stop calls stop() on every device; on a gripper not activated, writing rACT=1
    # would start an activation, which opens and shuts the fingers
    url, emulator = maosic_rig.url, maosic_rig.emulators["GR1"]
    assert "error" not in rpc(url, "system.stop")
    assert emulator.output == [0, 0, 0]
    assert rpc(url, "gripper.status")["result"]["activation"] == "reset"


def test_a_silent_gripper_is_offline(maosic_rig):
    maosic_rig.emulators["GR1"].misbehave("timeout", count=5)  # more than its retries
    error = rpc(maosic_rig.url, "gripper.status")["error"]
    assert error["code"] == -32003 and error["data"]["module"] == "GR1"


def test_a_lab_without_a_gripper_says_so(tmp_path):
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0)
    try:
        error = rpc(handle.url, "gripper.status")["error"]
        assert error["code"] == -32005 and "no gripper" in error["message"]
    finally:
        handle.stop()
