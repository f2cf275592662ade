"""A campaign of each paper's reaction on its rig, in simulation (issue 23): the real core loop
(CoreService + Worker, the campaign of maosic/campaign.py) drives a real daemon over HTTP
JSON-RPC, started on the rig's lab file, whose drivers speak their bytes to the emulators.

- the self-driving fluidic lab's Cs3Cu2I5 (examples/cs3cu2i5.json) on
  lab_sdfl_cs3cu2i5_sim.json: four Chemyx Fusion 6000, a Watlow F4T, the in-line PL cell;
- MAOSIC's CsPbBr3 (examples/cspbbr3.json) on lab_maosic_sim.json: the project's pumps, heater
  board, arm and CD spectrometer, with the Robotiq 2F-85 gripper on the rig.

The simulated lab runs at speed 0 (its waits cost no wall time).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from hardware_interface.devices.chemyx_fusion import RATE_DECIMALS, fmt_value
from hardware_interface.devices.watlow_f4t import REG_SET_POINT
from hardware_interface.server import start_daemon
from maosic.db.crypto import LogCipher
from maosic.db.models import Experiment, Feature, HardwareCommand
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from maosic.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
SDFL_CS3CU2I5 = ROOT / "hardware_interface/examples/lab_sdfl_cs3cu2i5_sim.json"
MAOSIC_SIM = ROOT / "hardware_interface/examples/lab_maosic_sim.json"
README = ROOT / "hardware_interface/README.md"
BUDGET = 3
CAMPAIGN_WALL_S = 45.0  # a campaign that takes longer fails: the lab runs at speed 0


def rpc(url: str, method: str, **params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(url, json=body, timeout=30).json()


def example(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "examples" / name).read_text(encoding="utf-8"))


def run_campaign(sessions, url: str, key_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Submit ``config`` (random optimizer, BUDGET experiments) and run it to its end with a
    Worker on the daemon at ``url``; the request's status with its experiments."""
    service = CoreService(sessions)
    submitted = service.submit(INSTALLATION, config=config, budget=BUDGET, optimizer="random",
                               seed=3)  # fmt: skip
    worker = Worker(sessions, url, LogCipher.from_file(key_dir / "log.key"), poll_s=0.01,
                    paused_retry_s=0.0)  # fmt: skip
    deadline = time.monotonic() + CAMPAIGN_WALL_S
    while service.status(INSTALLATION, submitted["id"])["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the campaign did not end in time"
        if not worker.run_once():
            time.sleep(0.05)
    return service.status(INSTALLATION, submitted["id"], experiments=True)


def features_and_methods(sessions, request_id: int) -> tuple[list[dict[str, float]], list[str]]:
    """Each experiment's features (in experiment order) and every daemon method the core called
    for the request."""
    with sessions() as session:
        ids = list(session.scalars(select(Experiment.id).where(Experiment.request_id == request_id)
                                   .order_by(Experiment.number)))  # fmt: skip
        features = [
            {f.name: f.value for f in session.scalars(select(Feature)
                                                      .where(Feature.experiment_id == i))}
            for i in ids
        ]  # fmt: skip
        calls = select(HardwareCommand.method).where(HardwareCommand.request_id == request_id)
        methods = list(session.scalars(calls.order_by(HardwareCommand.id)))
    return features, methods


def assert_all_done(status: dict[str, Any]) -> list[dict[str, Any]]:
    assert status["status"] == "done", (status["failure_reason"], status["stop_reason"])
    experiments = status["experiments"]
    assert status["n_done"] == BUDGET and len(experiments) == BUDGET
    for expt in experiments:
        assert expt["status"] == "done" and expt["error"] is None, expt
        assert isinstance(expt["reward"], float)
    assert status["best_reward"] == max(e["reward"] for e in experiments)
    return experiments


# -- the self-driving fluidic lab: Cs3Cu2I5 on Chemyx + Watlow F4T + in-line PL ------------------
@pytest.fixture()
def sdfl_rig():
    handle = start_daemon(sim=True, port=0, chemistry="cs3cu2i5", seed=1, speed=0.0,
                          watchdog_s=0, config_path=str(SDFL_CS3CU2I5))  # fmt: skip
    yield handle
    handle.stop()


def test_the_cs3cu2i5_campaign_runs_on_the_sdfl_rig_in_simulation(sdfl_rig, sessions, tmp_path):
    url, emulators = sdfl_rig.url, sdfl_rig.emulators
    modules = rpc(url, "system.describe")["result"]["modules"]
    drivers = {m: info["driver"] for m, info in modules.items()}
    assert drivers == {"SP1": "chemyx_fusion6000", "SP2": "chemyx_fusion6000",
                       "SP3": "chemyx_fusion6000", "SP4": "chemyx_fusion6000",
                       "H1": "watlow_f4t", "PL1": "mpl1_pl_spectrometer"}  # fmt: skip
    # every set point written to the F4T's loop-1 set point register, and every PL reading
    setpoints: list[float] = []
    f4t = emulators["H1"]
    write_float = f4t._write_float

    def spy_setpoint(register: int, value: float) -> None:
        if register == REG_SET_POINT:
            setpoints.append(value)
        write_float(register, value)

    f4t._write_float = spy_setpoint
    readings = []
    measure_pl = emulators["PL1"].commands["PL"]
    emulators["PL1"].commands["PL"] = lambda args: readings.append(args) or measure_pl(args)

    config = example("cs3cu2i5.json")
    status = run_campaign(sessions, url, tmp_path, config)
    experiments = assert_all_done(status)
    features, methods = features_and_methods(sessions, status["id"])
    for expt, feats in zip(experiments, features, strict=True):
        # the reward is the PLQY proxy of the in-line PL reading (metric max_plqy)
        assert feats["plqy_proxy"] is not None and feats["plqy_proxy"] > 0
        assert expt["reward"] == pytest.approx(feats["plqy_proxy"])
        # each stream's flow reached its Chemyx pump as a rate in mL/min (uL/min / 1000)
        for pump, param in (("SP1", "q_CuI"), ("SP2", "q_ZnI2"), ("SP3", "q_CsOA"),
                            ("SP4", "q_ODE")):  # fmt: skip
            rate = fmt_value(expt["params"][param] / 1000.0, RATE_DECIMALS)
            assert f"set rate {rate}".encode() in emulators[pump].lines_seen, (pump, rate)
        assert expt["params"]["T"] in setpoints  # the F4T was sent the experiment's T
    # the pumps were told the 10 mL syringes' bore, and each drew its reagent (a negative volume)
    for pump in ("SP1", "SP2", "SP3", "SP4"):
        assert b"set diameter 14.57" in emulators[pump].lines_seen
        assert any(line.startswith(b"set volume -") for line in emulators[pump].lines_seen)
    assert len(readings) == BUDGET and methods.count("spectrometer.pl") == BUDGET
    assert methods.count("pump.parallel") == BUDGET and methods.count("heater.set") >= BUDGET
    assert not any(m.startswith(("robot.", "spectrometer.cd", "spectrometer.abs")) for m in methods)
    # the stock ledger went down by what was drawn
    stock = rpc(url, "reagent.stock")["result"]
    assert stock["ODE"]["stock_mL"] < 500.0 and stock["CuI"]["stock_mL"] < 200.0


# -- the MAOSIC rig: CsPbBr3 with the Robotiq 2F-85 on the rig ----------------------------------
@pytest.fixture()
def maosic_rig():
    handle = start_daemon(sim=True, port=0, seed=1, speed=0.0, watchdog_s=0,
                          config_path=str(MAOSIC_SIM))  # fmt: skip
    yield handle
    handle.stop()


def test_the_cspbbr3_campaign_runs_on_the_maosic_rig_in_simulation(maosic_rig, sessions,
                                                                     tmp_path):  # fmt: skip
    url, emulators = maosic_rig.url, maosic_rig.emulators
    modules = rpc(url, "system.describe")["result"]["modules"]
    drivers = {m: info["driver"] for m, info in modules.items() if "driver" in info}
    assert drivers == {"SP1": "msp1_syringe_pump", "SP2": "msp1_syringe_pump",
                       "SP3": "msp1_syringe_pump", "H1": "mhb1_heater_board",
                       "AB1": "mab1_arduino_board", "CR1": "mra1_robot_arm",
                       "SPEC1": "mcd1_cd_spectrometer", "PL1": "mpl1_pl_spectrometer",
                       "GR1": "robotiq_2f85"}  # fmt: skip
    before = {m: emulators[m].requests_seen for m in ("SP1", "H1", "CR1", "SPEC1")}
    status = run_campaign(sessions, url, tmp_path, example("cspbbr3.json"))
    experiments = assert_all_done(status)
    features, methods = features_and_methods(sessions, status["id"])
    for expt, feats in zip(experiments, features, strict=True):
        # the reward is |CD| at the first exciton peak (metric max_abs_cd_at_exciton)
        assert expt["reward"] == pytest.approx(feats["abs_cd_at_exciton_mdeg"])
        assert expt["reward"] >= 0
    assert methods.count("spectrometer.cd") == BUDGET
    assert methods.count("robot.move") >= 3 * BUDGET
    assert all(emulators[m].requests_seen > before[m] for m in before)
    # the campaign has no gripper step (the instruction language has none); the gripper is on
    # the rig and answers over Modbus RTU after it
    gripper = rpc(url, "gripper.status")["result"]
    assert gripper["module"] == "GR1" and gripper["fault_code"] == 0


# -- the README's commands start each rig ----------------------------------------------------------
def readme_command(lab_file: str) -> list[str]:
    """The README's one-line command that starts ``lab_file`` in simulation."""
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"^\s*(python -m hardware_interface --sim[^\n`]*" + re.escape(lab_file)
                       + r"[^\n`]*)$", text, re.MULTILINE)  # fmt: skip
    assert len(found) == 1, f"the README should give one command for {lab_file}: {found}"
    return found[0].split("#")[0].split()


@pytest.mark.parametrize(
    ("lab_file", "chemistry"),
    [("lab_sdfl_cs3cu2i5_sim.json", "cs3cu2i5"), ("lab_maosic_sim.json", "cspbbr3")],
)
def test_the_readme_command_starts_the_rig(lab_file, chemistry):
    argv = readme_command(lab_file)
    assert argv[:3] == ["python", "-m", "hardware_interface"] and "--port" not in argv
    lab = json.loads((ROOT / "hardware_interface/examples" / lab_file).read_text("utf-8"))
    proc = subprocess.Popen([sys.executable, *argv[1:], "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    killer = threading.Timer(60.0, proc.kill)  # a hung start fails the test, never hangs it
    killer.start()
    try:
        first = proc.stdout.readline()
        assert first.startswith("hardware daemon serving on http://127.0.0.1:"), (
            first + proc.stderr.read()
        )
        url = first.split(" on ")[1].split()[0]
        described = rpc(url, "system.describe")["result"]
        assert described["lab"] == lab["lab"] and set(lab["devices"]) <= set(described["modules"])
        # the simulated chemistry is the reaction's (a lab file does not choose it): a rig
        # started on the wrong one has no stock bottles of the reaction's reagents
        assert described["simulated"] is True and described["chemistry"] == chemistry
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the SIGTERM handler is in place before the URL line is printed: a stop right after the
    # start still leaves the lab safe and exits 0
    assert proc.returncode == 0


def test_a_rig_file_on_the_wrong_simulated_chemistry_is_refused_at_start():
    from hardware_interface.labconfig import ConfigError

    lab = str(SDFL_CS3CU2I5)
    with pytest.raises(ConfigError, match="is --chemistry right"):
        start_daemon(sim=True, port=0, config_path=lab, chemistry="cspbbr3", watchdog_s=0)
    handle = start_daemon(sim=True, port=0, config_path=lab, chemistry="cs3cu2i5", watchdog_s=0)
    handle.stop()
