"""The daemon's belief about its lab (journal), system.state, and the recovery a lease runs.

Real parts: the daemon started by start_daemon (simulated lab, real drivers over the emulators,
over pseudo-terminals in one test), called over HTTP with the core's HardwareClient; the journal
and the simulated lab's state file live in tmp_path and survive a daemon restart.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from hardware_interface.errors import FAULT, OFFLINE, REAGENT
from hardware_interface.server import DaemonHandle, default_journal_path, main, start_daemon
from maosic.hardware import HardwareClient, HardwareError

RECOVERY_LOG = "hardware_interface.recovery"
STATE_LOG = "hardware_interface.lab_state"


def _start(tmp_path: Path, pty: bool = False, sim_state: str = "sim_state.json") -> DaemonHandle:
    return start_daemon(
        sim=True,
        watchdog_s=0,
        sim_pty=pty,
        journal_path=tmp_path / "journal.json",
        sim_state_path=tmp_path / sim_state,
    )


def _client(handle: DaemonHandle, epoch: int | None = None) -> HardwareClient:
    client = HardwareClient(handle.url, retries=0)
    client.lease_epoch = epoch
    return client


def _leave_the_lab_busy(client: HardwareClient) -> None:
    """What a core killed -9 mid-experiment leaves: two syringes loaded, heater on, arm away."""
    client.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.4)
    client.call("pump.fill", pump="SP2", reagent="PbBr2", volume_mL=0.25)
    client.call("heater.set", setpoint_C=80.0, wait_stable=False)
    client.call("robot.move", position="cd")


def _stock(client: HardwareClient) -> dict[str, float]:
    return {name: entry["stock_mL"] for name, entry in client.call("reagent.stock").items()}


def _recovery_steps(caplog: pytest.LogCaptureFixture, holder: str) -> list[str]:
    prefix = f"recovery for {holder}: "
    return [
        r.getMessage()[len(prefix) :]
        for r in caplog.records
        if r.name == RECOVERY_LOG and r.levelno == logging.WARNING
        and r.getMessage().startswith(prefix)
    ]  # fmt: skip


def test_system_state_reports_a_filled_syringe_with_its_reagent(tmp_path):
    handle = _start(tmp_path)
    try:
        client = _client(handle)
        fresh = client.call("system.state")
        assert fresh["idle"] is True and fresh["not_idle"] == []
        client.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
        state = client.call("system.state")
    finally:
        handle.stop()
    sp1 = state["pumps"]["SP1"]
    assert sp1["volume_mL"] == pytest.approx(0.3, abs=1e-6)
    assert sp1["reagent"] == "Cs-oleate" and sp1["capacity_mL"] == 0.5
    assert sp1["believed_volume_mL"] == pytest.approx(0.3, abs=1e-6)
    assert state["pumps"]["SP2"]["volume_mL"] == 0.0 and state["pumps"]["SP2"]["reagent"] is None
    assert state["heater"]["on"] is False and state["heater"]["setpoint_C"] is None
    assert state["robot"]["position"] == "home"
    assert state["idle"] is False
    assert state["not_idle"] == ["SP1 holds 0.3000 mL of Cs-oleate"]
    assert state["discrepancies"] == [] and state["reconciled"] is True


def test_a_daemon_restart_keeps_the_syringes_and_the_stock_ledger(tmp_path):
    first = _start(tmp_path)
    try:
        client = _client(first)
        _leave_the_lab_busy(client)
        stock_before = _stock(client)
    finally:
        first.stop()
    assert stock_before["Cs-oleate"] == pytest.approx(20.0 - 0.4)
    second = _start(tmp_path)
    try:
        client = _client(second)
        state = client.call("system.state")
        stock_after = _stock(client)
        world_sp1 = second.lab.syringe_volume_mL("SP1")
    finally:
        second.stop()
    assert world_sp1 == pytest.approx(0.4, abs=1e-6)  # the simulated syringe kept its reagent
    assert state["pumps"]["SP1"]["volume_mL"] == pytest.approx(0.4, abs=1e-6)
    assert state["pumps"]["SP1"]["reagent"] == "Cs-oleate"
    # the journal knew it before the pump was read again
    assert state["pumps"]["SP1"]["believed_volume_mL"] == pytest.approx(0.4, abs=1e-6)
    assert state["pumps"]["SP2"]["volume_mL"] == pytest.approx(0.25, abs=1e-6)
    assert state["pumps"]["SP2"]["reagent"] == "PbBr2"
    assert state["heater"]["setpoint_C"] == 80.0 and state["heater"]["on"] is True
    assert state["robot"]["position"] == "cd"
    assert state["discrepancies"] == []  # the journal and the restarted lab agree
    assert state["idle"] is False and len(state["not_idle"]) == 4
    assert stock_after == stock_before


def test_taking_the_lease_recovers_the_lab_and_a_full_fill_works(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=RECOVERY_LOG)
    first = _start(tmp_path)
    try:
        _leave_the_lab_busy(_client(first))
    finally:
        first.stop()
    second = _start(tmp_path)
    try:
        client = _client(second)
        stock_before = _stock(client)
        grant = client.call("lease.acquire", holder="core-b", ttl_s=60)
        logged = _recovery_steps(caplog, "core-b")
        state = client.call("system.state")
        stock_after_recovery = _stock(client)
        sampled = second.lab.last_sample_conditions()
        holder = _client(second, grant["epoch"])
        filled = holder.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.5)
        again = client.call("lease.acquire", holder="core-b", ttl_s=60)
    finally:
        second.stop()
    recovered = grant["recovered"]
    assert recovered == [
        "switched the heater H1 off (it was set to 80 °C)",
        "moved the arm CR1 from cd to waste, its cuvette emptied there and kept away from the "
        "reactor outlet while the syringes are flushed",
        "emptied SP1 through the reactor to waste: 0.4000 mL of Cs-oleate at 2.5 mL/min "
        "(not returned to the stock ledger)",
        "emptied SP2 through the reactor to waste: 0.2500 mL of PbBr2 at 2.5 mL/min "
        "(not returned to the stock ledger)",
        "moved the arm CR1 from waste to home",
    ]
    assert logged == recovered  # each step logged at WARNING
    assert state["idle"] is True and state["not_idle"] == []
    assert all(p["volume_mL"] == 0.0 and p["reagent"] is None for p in state["pumps"].values())
    assert state["heater"]["on"] is False and state["robot"]["position"] == "home"
    assert stock_after_recovery == stock_before  # the flushed reagent went to waste
    assert sampled is None  # the flush was never taken as a sample
    assert filled["volume_mL"] == pytest.approx(0.5, abs=1e-6)  # no over-fill
    # the lab is loaded again under the same holder's new lease: recovered once more
    assert again["epoch"] == grant["epoch"] + 1
    emptied = [step for step in again["recovered"] if step.startswith("emptied SP1")]
    assert len(emptied) == 1 and "0.5000 mL of Cs-oleate" in emptied[0]


def test_an_idle_lab_is_not_touched(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=RECOVERY_LOG)
    handle = _start(tmp_path)
    try:
        client = _client(handle)
        grant = client.call("lease.acquire", holder="core-a")
        clock = handle.lab.clock.now()
    finally:
        handle.stop()
    assert grant["recovered"] == [] and _recovery_steps(caplog, "core-a") == []
    assert clock == 0.0  # nothing moved, not even the lab's clock


def test_a_discrepancy_between_journal_and_instrument_is_reported(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=STATE_LOG)
    first = _start(tmp_path)
    try:
        _leave_the_lab_busy(_client(first))
    finally:
        first.stop()
    # While the daemon was down someone emptied the syringes, switched the heater off and homed
    # the arm: the same journal meets a lab in another state (a fresh simulated lab).
    second = _start(tmp_path, sim_state="another_lab.json")
    try:
        client = _client(second)
        state = client.call("system.state")
        later = client.call("system.state")
    finally:
        second.stop()
    found = {(d["module"], d["quantity"]): (d["journal"], d["instrument"])
             for d in state["discrepancies"]}  # fmt: skip
    assert found == {
        ("SP1", "volume_mL"): (0.4, 0.0),
        ("SP2", "volume_mL"): (0.25, 0.0),
        ("H1", "setpoint_C"): (80.0, None),
        ("CR1", "position"): ("cd", "home"),
    }
    assert state["pumps"]["SP1"]["believed_volume_mL"] == pytest.approx(0.4)
    assert state["pumps"]["SP1"]["volume_mL"] == 0.0  # the instrument wins
    assert state["idle"] is True
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("SP1" in w and "volume_mL = 0.4" in w and "instrument" in w for w in warned)
    assert len(warned) == 4
    # the journal was corrected: the next reading agrees with it
    assert later["discrepancies"] == [] and later["pumps"]["SP1"]["believed_volume_mL"] == 0.0


def test_recovery_is_refused_while_a_loaded_pump_is_in_a_latched_fault(tmp_path):
    handle = _start(tmp_path)
    try:
        client = _client(handle)
        client.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.4)
        client.call("system.stop")
        with pytest.raises(HardwareError) as refused:
            client.call("lease.acquire", holder="core-b")
        lease_after = client.call("lease.status")
        still = client.call("system.state")["pumps"]["SP1"]["volume_mL"]
        client.call("system.reset_faults")
        grant = client.call("lease.acquire", holder="core-b")
        state = client.call("system.state")
    finally:
        handle.stop()
    error = refused.value
    assert error.code == FAULT and error.data["module"] == "SP1"
    assert "recovery for core-b could not run" in error.message
    assert "SP1 is in a latched fault" in error.message and "system.stop" in error.message
    assert lease_after["holder"] is None  # nobody may drive the lab as it is
    assert still == pytest.approx(0.4)  # nothing was done
    assert any(step.startswith("emptied SP1") for step in grant["recovered"])
    assert state["idle"] is True


def test_recovery_is_refused_while_a_pump_of_unknown_content_is_unplugged(tmp_path):
    handle = _start(tmp_path)
    try:
        client = _client(handle)
        handle.emulators["SP3"].misbehave("disconnect")
        state = client.call("system.state")
        with pytest.raises(HardwareError) as refused:
            client.call("lease.acquire", holder="core-b")
        handle.emulators["SP3"].reconnect()
        grant = client.call("lease.acquire", holder="core-b")
    finally:
        handle.stop()
    sp3 = state["pumps"]["SP3"]
    assert sp3["volume_mL"] is None and sp3["state"] == "offline"
    assert state["idle"] is False and state["not_idle"][0].startswith("SP3 cannot be read")
    assert refused.value.code == OFFLINE and refused.value.data["module"] == "SP3"
    assert "recovery for core-b could not run: SP3 is not connected" in refused.value.message
    assert grant["recovered"] == []  # plugged back in, it reads empty: the lab was idle


def test_over_pseudo_terminals_a_restarted_daemon_recovers_the_lab(tmp_path):
    first = _start(tmp_path, pty=True)
    try:
        client = _client(first)
        client.call("pump.fill", pump="SP3", reagent="ODE", volume_mL=0.45)
        with pytest.raises(HardwareError) as overfill:
            client.call("pump.fill", pump="SP3", reagent="ODE", volume_mL=0.45)
    finally:
        first.stop()
    assert overfill.value.code == REAGENT and "over-fill" in overfill.value.message
    second = _start(tmp_path, pty=True)
    try:
        assert second.daemon.config.devices["SP3"].port.startswith("/dev/pts/")
        client = _client(second)
        before = client.call("system.state")
        grant = client.call("lease.acquire", holder="core-b")
        holder = _client(second, grant["epoch"])
        filled = holder.call("pump.fill", pump="SP3", reagent="ODE", volume_mL=0.5)
    finally:
        second.stop()
    assert before["pumps"]["SP3"]["volume_mL"] == pytest.approx(0.45)
    assert before["pumps"]["SP3"]["reagent"] == "ODE"
    assert grant["recovered"] == [
        "moved the arm CR1 from home to waste, its cuvette emptied there and kept away from the "
        "reactor outlet while the syringes are flushed",
        "emptied SP3 through the reactor to waste: 0.4500 mL of ODE at 2.5 mL/min "
        "(not returned to the stock ledger)",
        "moved the arm CR1 from waste to home",
    ]
    assert filled["volume_mL"] == pytest.approx(0.5)


def test_the_journal_of_a_real_lab_defaults_beside_its_configuration(tmp_path, capsys):
    assert default_journal_path("/etc/maosic/lab_real.json") == Path(
        "/etc/maosic/lab_real.journal.json"
    )
    config = tmp_path / "bench.json"
    config.write_text(json.dumps({
        "reagents": {"ODE": {"stock_mL": 50.0}},
        "devices": {"SP1": {"driver": "msp1_syringe_pump", "port": str(tmp_path / "no-tty"),
                            "reagent": "ODE"}},
    }))  # fmt: skip
    handle = start_daemon(sim=False, config_path=str(config), watchdog_s=0)
    try:
        state = _client(handle).call("system.state")
    finally:
        handle.stop()
    journal = json.loads((tmp_path / "bench.journal.json").read_text())
    assert len(journal["lab_uid"]) == 32
    # the pump's port does not exist: unreadable, and the fresh journal knows nothing of it
    assert state["pumps"]["SP1"]["state"] == "offline" and state["idle"] is False
    assert main(["--config", str(config), "--sim-state", str(tmp_path / "s.json")]) == 2
    assert "--sim-state is for the simulated lab" in capsys.readouterr().out
