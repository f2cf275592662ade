"""Integration: the real drivers over the maosicsim:// serial handler against the emulators and
the SimLab, through real HTTP JSON-RPC round trips to the daemon."""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from hardware_interface.server import start_daemon
from hardware_interface.sim import rig


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.next_id = 0

    def raw(self, body: bytes) -> requests.Response:
        return self.session.post(self.url, data=body, headers={"Content-Type": "application/json"})

    def call(self, method: str, **params):
        self.next_id += 1
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": self.next_id}
        reply = self.session.post(self.url, json=request).json()
        assert reply["id"] == self.next_id
        return reply

    def ok(self, method: str, **params):
        reply = self.call(method, **params)
        assert "error" not in reply, reply
        return reply["result"]

    def error(self, method: str, **params) -> dict:
        reply = self.call(method, **params)
        assert "error" in reply, reply
        return reply["error"]


@pytest.fixture
def lab():
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0)
    client = Client(handle.url)
    yield handle, client
    handle.stop()


def fill_all(client: Client, volume: float = 0.45) -> None:
    for pump, reagent in rig.RIGS["cspbbr3"].pump_reagents.items():
        client.ok("pump.fill", pump=pump, reagent=reagent, volume_mL=volume, rate_mL_min=1.0)


def test_describe_lists_modules_limits_units(lab):
    handle, client = lab
    d = client.ok("system.describe")
    assert d["simulated"] is True
    kinds = {k: v["kind"] for k, v in d["modules"].items()}
    for module, kind in {"SP1": "pump", "SP2": "pump", "SP3": "pump", "H1": "heater",
                         "CR1": "robot", "SPEC1": "spectrometer", "PL1": "spectrometer",
                         "V1": "valve", "V2": "valve"}.items():  # fmt: skip
        assert kinds[module] == kind
    assert d["modules"]["SP1"]["limits"]["volume_mL"] == [0.0, 0.5]
    assert d["modules"]["H1"]["units"]["temperature"] == "°C"
    assert d["reagents"]["Cs-oleate"]["stock_mL"] == handle.lab.stock_mL("Cs-oleate")


def test_full_experiment_round_trip(lab):
    handle, client = lab
    heater = client.ok("heater.set", setpoint_C=130.0, ramp_C_min=10.0)
    assert heater["stable"] and abs(heater["temperature_C"] - 130.0) <= 1.0
    fill_all(client)
    r1, r2, r3 = rig.cspbbr3_rates_mL_min(0.8)
    duration = 2 * rig.EQUILIBRATION_S
    moves = [
        {"pump": p, "volume_mL": round(r * duration / 60.0, 4), "rate_mL_min": r}
        for p, r in (("SP1", r1), ("SP2", r2), ("SP3", r3))
    ]
    before = handle.lab.clock.now()
    result = client.ok("pump.parallel", moves=moves)
    assert result["duration_s"] == pytest.approx(duration, rel=0.01)
    assert handle.lab.clock.now() - before >= duration
    assert set(result["pumps"]) == {"SP1", "SP2", "SP3"}
    client.ok("robot.move", position="sampler")
    assert client.ok("robot.move", position="cd")["position"] == "cd"
    cd = client.ok("spectrometer.cd", integration_ms=100)
    assert len(cd["wavelength_nm"]) == len(cd["cd_mdeg"]) == len(cd["absorbance"]) > 50
    peak = max(abs(v) for v in cd["cd_mdeg"])
    assert 0.5 < peak < 1.6  # near the global optimum of about 1 mdeg
    absorb = client.ok("spectrometer.absorbance")
    assert absorb["wavelength_nm"] == cd["wavelength_nm"]
    truth = handle.lab.last_sample_conditions()
    assert truth["T_C"] == pytest.approx(130.0, abs=1.0)
    assert truth["C_mmol_mL"] == pytest.approx(0.8, abs=0.01)
    stock = client.ok("system.describe")["reagents"]["Cs-oleate"]["stock_mL"]
    assert stock == pytest.approx(handle.lab.stock_mL("Cs-oleate"), abs=1e-6)


def test_limits_and_unknown_modules(lab):
    _, client = lab
    err = client.error("heater.set", setpoint_C=260.0)
    assert err["code"] == -32001 and err["data"]["module"] == "H1"
    err = client.error("pump.fill", pump="SP9", reagent="ODE", volume_mL=0.1)
    assert err["code"] == -32005 and err["data"]["module"] == "SP9"
    err = client.error("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1, rate_mL_min=50)
    assert err["code"] == -32001 and "rate_mL_min" in err["message"]
    err = client.error("robot.move", position="kitchen")
    assert err["code"] == -32001 and err["data"]["module"] == "CR1"
    err = client.error("valve.set", valve="V7", open=True)
    assert err["code"] == -32005
    err = client.error("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL="lots")
    assert err["code"] == -32602 and "volume_mL" in err["data"]


def test_syringe_volume_safety(lab):
    _, client = lab
    client.ok("heater.set", setpoint_C=110.0)
    err = client.error("pump.infuse", pump="SP1", volume_mL=0.1, rate_mL_min=0.1)
    assert err["code"] == -32006 and "empty" in err["message"]
    client.ok("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
    err = client.error("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
    assert err["code"] == -32006 and "over-fill" in err["message"]
    err = client.error("pump.fill", pump="SP1", reagent="PbBr2", volume_mL=0.1)
    assert err["code"] == -32006
    status = client.ok("pump.status", pump="SP1")
    assert status["volume_mL"] == pytest.approx(0.3) and status["reagent"] == "Cs-oleate"


def test_empty_stock_bottle(lab):
    handle, client = lab
    handle.daemon.stock_mL["ODE"] = 0.05  # the ledger says the bottle is nearly empty
    err = client.error("pump.fill", pump="SP3", reagent="ODE", volume_mL=0.1)
    assert err["code"] == -32006 and err["data"]["reagent"] == "ODE"


def test_heater_must_be_stable_before_reagents_flow(lab):
    _, client = lab
    fill_all(client, 0.2)
    err = client.error("pump.infuse", pump="SP1", volume_mL=0.05, rate_mL_min=0.05)
    assert err["code"] == -32007 and err["data"]["module"] == "H1"
    client.ok("heater.set", setpoint_C=150.0, wait_stable=False)
    err = client.error("pump.infuse", pump="SP1", volume_mL=0.05, rate_mL_min=0.05)
    assert err["code"] == -32007 and "not yet stable" in err["message"]
    client.ok("system.wait", seconds=1200)
    assert client.ok("heater.status")["stable"]
    client.ok("pump.infuse", pump="SP1", volume_mL=0.05, rate_mL_min=0.05)


def test_busy_pump(lab):
    _, client = lab
    client.ok("heater.set", setpoint_C=100.0)
    fill_all(client, 0.3)
    client.ok("pump.infuse", pump="SP3", volume_mL=0.1, rate_mL_min=0.01, wait=False)
    assert client.ok("pump.status", pump="SP3")["busy"] is True
    err = client.error("pump.infuse", pump="SP3", volume_mL=0.1, rate_mL_min=0.01)
    assert err["code"] == -32002 and err["data"]["module"] == "SP3"
    client.ok("pump.stop", pump="SP3")
    assert client.ok("pump.status", pump="SP3")["busy"] is False


def test_over_temperature_triggers_emergency_stop(lab):
    handle, client = lab
    client.ok("heater.set", setpoint_C=150.0)
    fill_all(client, 0.3)
    client.ok("pump.infuse", pump="SP3", volume_mL=0.2, rate_mL_min=0.01, wait=False)
    handle.lab.inject_overtemperature(80.0)  # the thermocouple now reads ~230 °C
    status = client.ok("heater.status")
    assert status["state"] == "fault" and "over-temperature" in status["fault"]
    assert handle.lab.heater_setpoint_C() is None  # heater off
    assert not handle.lab.pump_busy("SP3")  # pumps stopped
    err = client.error("heater.set", setpoint_C=120.0)
    assert err["code"] == -32004 and err["data"]["module"] == "H1"
    err = client.error("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)
    assert err["code"] == -32004
    sys_status = client.ok("system.status")
    assert sys_status["ok"] is False and sys_status["modules"]["SP1"]["state"] == "fault"
    assert set(client.ok("system.reset_faults")["cleared"]) >= {"H1", "SP1", "SP2", "SP3"}
    assert client.ok("heater.set", setpoint_C=120.0)["stable"]


def test_a_board_trip_met_by_a_command_is_reported_as_over_temperature(lab):
    # The board's cut-out answers the next command with a bare ER 6. Whatever that command is,
    # the lab stops and every module says why, as when a status read sees the heat first.
    handle, client = lab
    client.ok("heater.set", setpoint_C=150.0)
    handle.lab.inject_overtemperature(80.0)
    while handle.lab.heater_fault() is None:  # the sim's firmware trips within one period
        time.sleep(0.005)
    err = client.error("heater.set", setpoint_C=120.0)
    assert err["code"] == -32004 and err["data"]["module"] == "H1"
    assert "over-temperature" in err["message"] and "over-temperature" in err["data"]["fault"]
    modules = client.ok("system.status")["modules"]
    assert "H1 over-temperature" in modules["SP1"]["fault"]


def test_watchdog_catches_overshoot_without_calls():
    import time

    handle = start_daemon(sim=True, port=0, watchdog_s=0.02)
    try:
        client = Client(handle.url)
        client.ok("heater.set", setpoint_C=120.0)
        handle.lab.inject_overtemperature(120.0)
        deadline = time.monotonic() + 3.0
        while handle.daemon.faults.fault("H1") is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert handle.daemon.faults.fault("H1") is not None
        assert handle.lab.heater_setpoint_C() is None
    finally:
        handle.stop()


def test_system_stop_latches_until_reset(lab):
    handle, client = lab
    client.ok("heater.set", setpoint_C=120.0)
    stopped = client.ok("system.stop")["stopped"]
    assert {"SP1", "SP2", "SP3", "H1"} <= set(stopped)
    assert handle.lab.heater_setpoint_C() is None
    assert (
        client.error("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)["code"] == -32004
    )
    client.ok("system.reset_faults")
    client.ok("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)


def test_lost_serial_line_is_reported_and_recovers(lab):
    handle, client = lab
    handle.emulators["SP2"].misbehave("disconnect")
    err = client.error("pump.status", pump="SP2")
    assert err["code"] == -32003 and err["data"]["module"] == "SP2"
    status = client.ok("system.status")
    assert status["ok"] is False
    assert status["modules"]["SP2"]["state"] == "offline"
    assert status["modules"]["SP1"]["state"] == "ok"
    handle.emulators["SP2"].reconnect()
    assert client.ok("system.status")["modules"]["SP2"]["state"] == "ok"


def test_silent_device_times_out_to_offline(lab):
    handle, client = lab
    handle.emulators["CR1"].misbehave("timeout", count=3)
    err = client.error("robot.status")
    assert err["code"] == -32003 and "no reply" in err["message"]
    assert client.ok("robot.status")["state"] == "ok"  # answers again: back online


def test_garbled_and_dropped_replies_are_retried_transparently(lab):
    handle, client = lab
    handle.emulators["H1"].misbehave("garble")
    handle.emulators["H1"].misbehave("drop")
    assert client.ok("heater.set", setpoint_C=100.0, wait_stable=False)["setpoint_C"] == 100.0
    # a retried motion command is answered from the reply cache, not executed twice
    client.ok("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)
    seen = handle.emulators["SP1"].requests_seen
    handle.emulators["SP1"].misbehave("drop", after=1)  # fill sends STA, then WDR: drop WDR's
    client.ok("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.1)
    assert handle.emulators["SP1"].requests_seen > seen + 2  # the WDR line went out twice
    assert handle.lab.syringe_volume_mL("SP1") == pytest.approx(0.2)


def test_spectrometer_needs_a_sample(lab):
    _, client = lab
    err = client.error("spectrometer.cd")
    assert err["code"] == -32007 and err["data"]["module"] == "SPEC1"


def test_valves_and_pl(lab):
    handle, client = lab
    assert client.ok("valve.set", valve="V2", open=True)["open"] is True
    assert handle.lab.valve_open("V2") is True
    assert client.ok("system.status")["modules"]["V2"]["open"] is True
    pl = client.ok("spectrometer.pl", integration_ms=50, excitation_nm=300)
    assert len(pl["wavelength_nm"]) == len(pl["intensity"]) > 10 and "abs_300nm" in pl


def test_http_batch_notification_and_parse_error(lab):
    _, client = lab
    body = json.dumps(
        [
            {"jsonrpc": "2.0", "method": "heater.status", "id": "a"},
            {"jsonrpc": "2.0", "method": "system.wait", "params": {"seconds": 5}},
            1,
            {"jsonrpc": "2.0", "method": "nope", "id": "b"},
        ]
    ).encode()
    reply = client.raw(body).json()
    assert isinstance(reply, list) and len(reply) == 3
    by_id = {r["id"]: r for r in reply}
    assert by_id["a"]["result"]["module"] == "H1"
    assert by_id["b"]["error"]["code"] == -32601
    assert by_id[None]["error"]["code"] == -32600
    note = client.raw(b'{"jsonrpc": "2.0", "method": "system.wait", "params": {"seconds": 1}}')
    assert note.status_code == 204 and note.content == b""
    bad = client.raw(b'{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert bad.status_code == 200 and bad.json()["error"]["code"] == -32700
    assert client.session.get(client.url).status_code == 405


def test_heater_pid_round_trip(lab):
    handle, client = lab
    gains = client.ok("heater.pid", kp=10.0, ki=0.05, kd=15.0)
    assert (gains["kp"], gains["ki"], gains["kd"]) == (10.0, 0.05, 15.0)
    assert handle.lab.heater_pid() == pytest.approx((10.0, 0.05, 15.0))


def test_auth_hook_refuses():
    handle = start_daemon(sim=True, port=0, watchdog_s=0, auth=lambda h: h.get("X-Token") == "s3")
    try:
        body = {"jsonrpc": "2.0", "method": "heater.status", "id": 1}
        assert requests.post(handle.url, json=body).status_code == 401
        ok = requests.post(handle.url, json=body, headers={"X-Token": "s3"})
        assert ok.json()["result"]["module"] == "H1"
    finally:
        handle.stop()


def test_parallel_moves_are_validated_before_any_pump_starts(lab):
    handle, client = lab
    client.ok("heater.set", setpoint_C=120.0)
    fill_all(client, 0.2)
    bad_shapes = [
        [],
        [{"pump": "SP1", "volume_mL": 0.1}],
        [{"pump": "SP1", "volume_mL": "x", "rate_mL_min": 0.1}],
        [{"pump": "SP1", "volume_mL": 0.1, "rate_mL_min": 0.1}] * 2,
    ]
    for moves in bad_shapes:
        assert client.error("pump.parallel", moves=moves)["code"] == -32602
    # SP2 would run dry: nothing may start, SP1 included
    err = client.error(
        "pump.parallel",
        moves=[
            {"pump": "SP1", "volume_mL": 0.1, "rate_mL_min": 0.1},
            {"pump": "SP2", "volume_mL": 0.3, "rate_mL_min": 0.1},
        ],
    )
    assert err["code"] == -32006 and err["data"]["module"] == "SP2"
    assert handle.lab.syringe_volume_mL("SP1") == pytest.approx(0.2)


def test_withdraw_heater_off_and_wait_limits(lab):
    handle, client = lab
    status = client.ok("pump.withdraw", pump="SP2", volume_mL=0.25, rate_mL_min=0.5)
    assert status["volume_mL"] == pytest.approx(0.25) and status["reagent"] == "PbBr2"
    client.ok("heater.set", setpoint_C=110.0, wait_stable=False)
    assert client.ok("heater.off")["setpoint_C"] is None
    assert client.error("system.wait", seconds=-1)["code"] == -32001
    err = client.error("heater.set", setpoint_C=180.0, timeout_s=5.0)
    assert err["code"] == -32007 and "not stable" in err["message"]


def test_second_chemistry_has_four_pumps_and_pl():
    handle = start_daemon(sim=True, port=0, chemistry="cs3cu2i5", watchdog_s=0)
    try:
        client = Client(handle.url)
        described = client.ok("system.describe")
        assert [m for m, v in described["modules"].items() if v["kind"] == "pump"] == [
            "SP1",
            "SP2",
            "SP3",
            "SP4",
        ]
        assert described["modules"]["SP4"]["reagent"] == "ODE"
        client.ok("pump.fill", pump="SP4", reagent="ODE", volume_mL=0.2)
        pl = client.ok("spectrometer.pl")
        assert len(pl["intensity"]) == len(pl["wavelength_nm"])
    finally:
        handle.stop()


def test_every_command_and_reply_is_logged(lab, caplog):
    _, client = lab
    with caplog.at_level("DEBUG"):
        client.ok("pump.status", pump="SP1")
    rpc_lines = [r.getMessage() for r in caplog.records if r.name == "hardware_interface.rpc"]
    assert any(m.startswith('pump.status {"pump": "SP1"} -> {"result"') for m in rpc_lines)
    wire = [r.getMessage() for r in caplog.records if r.name == "hardware_interface.wire"]
    assert any("SP1 > b'" in m and "STA*" in m and "OK 0 0.0" in m for m in wire)


def test_http_round_trip_with_drivers_on_pseudo_terminals():
    handle = start_daemon(sim=True, port=0, watchdog_s=0, sim_pty=True)
    try:
        assert handle.daemon.config.devices["H1"].port.startswith("/dev/")
        client = Client(handle.url)
        assert client.ok("heater.set", setpoint_C=125.0)["stable"]
        client.ok("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.2)
        assert handle.lab.syringe_volume_mL("SP1") == pytest.approx(0.2)
        assert client.ok("system.status")["ok"] is True
    finally:
        handle.stop()


def test_peristaltic_and_stepper(lab):
    handle, client = lab
    assert client.ok("peristaltic.set", rpm=-20.0)["rpm"] == -20.0
    assert client.error("peristaltic.set", rpm=500.0)["code"] == -32001
    before = handle.lab.clock.now()
    moved = client.ok("stepper.move", steps=-400, speed_steps_s=100.0)
    assert moved["position_steps"] == -400 and moved["busy"] is False
    assert handle.lab.clock.now() - before >= 4.0
    assert client.error("stepper.move", steps=1.5)["code"] == -32602
    client.ok("system.stop")
    assert client.ok("peristaltic.status")["rpm"] == 0.0  # the emergency stop halts it too


def test_answers_are_whole_http_responses_on_one_kept_alive_connection():
    # The daemon writes status line, headers and body in one send; a client reading the
    # socket must get complete, well-formed HTTP/1.1 answers, several on one connection.
    handle = start_daemon(sim=True, port=0, watchdog_s=0)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
        for call_id, method in enumerate(["system.status", "system.describe"], start=1):
            body = json.dumps({"jsonrpc": "2.0", "id": call_id, "method": method}).encode()
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            reply = conn.getresponse()
            data = reply.read()
            assert reply.status == 200 and reply.version == 11
            assert reply.getheader("Content-Type") == "application/json"
            assert int(reply.getheader("Content-Length")) == len(data)
            assert reply.getheader("Date") and not reply.will_close
            assert json.loads(data)["id"] == call_id
        first_socket = conn.sock
        conn.request("GET", "/")
        refused = conn.getresponse()
        assert refused.status == 405 and b"POST" in refused.read()
        assert conn.sock is first_socket  # still the same connection
        conn.close()
    finally:
        handle.stop()
