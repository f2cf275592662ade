"""The vendors' own instruments (issue 23): exact bytes from the vendors' documents, and the real
drivers (pyserial, pymodbus) over pseudo-terminals and loopback TCP against the emulators.

Documents cited (see each driver's docstring for the full references):
  Chemyx knowledge base "Serial (RS232) Commands" [KB-CMD], "Serial Commands" [KB-SER],
  "RS232 Communication" [KB-RS232];
  Robotiq "2F-85 & 2F-140 Instruction Manual" [2F-IM] (printed page numbers), Robotiq "Hand-E
  Instruction Manual" [HE-IM], Robotiq blog "Controlling the Robotiq 2F gripper with Modbus
  commands in Python" [BLOG];
  TestEquity "F4T Controller" manual ch. 4 [TE-F4T], Watlow F4T User's Guide [F4T-UG].
"""

from __future__ import annotations

import struct

import pytest
import requests

from hardware_interface.devices.base import (
    DeviceBusy,
    DeviceNotReady,
    DeviceRefused,
    DeviceTimeout,
    RangeError,
)
from hardware_interface.devices.chemyx_fusion import ChemyxFusion6000
from hardware_interface.devices.modbus_link import float_to_words, open_modbus, words_to_float
from hardware_interface.devices.robotiq_2f85 import Robotiq2F85
from hardware_interface.devices.watlow_f4t import WatlowF4T
from hardware_interface.server import start_daemon
from hardware_interface.sim.emulators.chemyx import ChemyxEmulator
from hardware_interface.sim.emulators.modbus import TCP, crc16
from hardware_interface.sim.emulators.pty_bridge import PtyBridge
from hardware_interface.sim.emulators.robotiq import Robotiq2F85Emulator
from hardware_interface.sim.emulators.tcp_bridge import TcpBridge
from hardware_interface.sim.emulators.watlow import WatlowF4TEmulator
from hardware_interface.sim.world import SimLab
from hardware_interface.transports import SerialTransport
from tests.hardware.scripted import ScriptedTransport

SDFL_SIM = "hardware_interface/examples/lab_sdfl_sim.json"
MAOSIC_SIM = "hardware_interface/examples/lab_maosic_sim.json"


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# -- Chemyx Fusion 6000 -----------------------------------------------------------------------
def chemyx(script, **kwargs) -> tuple[ChemyxFusion6000, ScriptedTransport]:
    t = ScriptedTransport(script)
    options = {"capacity_mL": 0.5, "diameter_mm": 3.256, "max_rate_mL_min": 10.0, **kwargs}
    return ChemyxFusion6000(t, "SP1", **options), t


def test_chemyx_printed_examples_exact_bytes():
    # [KB-CMD]: "set diameter 11.73" returns the set diameter; "set units 2" the unit integer.
    pump, t = chemyx([(b"set diameter 11.73\r", b"11.73\r\n"), (b"set units 2\r", b"2\r\n")])
    pump.set_diameter(11.73)
    pump.set_units("uL/min")
    t.assert_done()


def test_chemyx_start_pause_stop_replies_as_printed():
    # [KB-SER]: "Pump start running…", "Pump delay…", "Pump pause!", "Pump stop!"
    pump, t = chemyx(
        [
            (b"start\r", "Pump start running…\r\n".encode()),
            (b"start\r", "Pump delay…\r\n".encode()),
            (b"pause\r", b"Pump pause!\r\n"),
            (b"stop\r", b"Pump stop!\r\n"),
        ]
    )
    pump.start()
    pump.start()
    pump.pause()
    pump.stop()
    t.assert_done()


def test_chemyx_infuse_and_withdraw_exact_bytes():
    # [KB-SER]: "set volume ... (+infuse,-withdraws)"; units 0 = mL/min [KB-CMD]
    run = [
        (b"set units 0\r", b"0\r\n"),
        (b"set diameter 3.256\r", b"3.256\r\n"),
    ]
    pump, t = chemyx(
        [
            (b"pump status\r", b"0\r\n"),
            *run,
            (b"set volume -0.25\r", b"-0.25\r\n"),
            (b"set rate 1.5\r", b"1.5\r\n"),
            (b"start\r", b"Pump start running...\r\n"),
            (b"dispensed volume\r", b"0.25\r\n"),  # the bookkeeping before the next run
            (b"pump status\r", b"0\r\n"),
            *run,
            (b"set volume 0.1\r", b"0.1\r\n"),
            (b"set rate 0.5\r", b"0.5\r\n"),
            (b"start\r", b"Pump start running...\r\n"),
            (b"pump status\r", b"1\r\n"),
            (b"dispensed volume\r", b"0.04\r\n"),
        ]
    )
    assert pump.withdraw(0.25, 1.5) == pytest.approx(10.0)
    assert pump.infuse(0.1, 0.5) == pytest.approx(12.0)
    state = pump.status()
    assert state.busy and state.volume_mL == pytest.approx(0.21)
    t.assert_done()


def test_chemyx_multi_step_is_comma_separated():
    # [KB-RS232]: multi-step values are comma separated
    pump, t = chemyx(
        [
            (b"pump status\r", b"0\r\n"),
            (b"set units 0\r", b"0\r\n"),
            (b"set diameter 3.256\r", b"3.256\r\n"),
            (b"set volume -0.1,-0.2\r", b"-0.1,-0.2\r\n"),
            (b"set rate 1,2\r", b"1,2\r\n"),
            (b"start\r", b"Pump start running...\r\n"),
        ]
    )
    assert pump.run_steps([(-0.1, 1.0), (-0.2, 2.0)]) == pytest.approx(12.0)
    t.assert_done()


def test_chemyx_value_not_taken_is_refused():
    # [KB-RS232]: a returned value that differs from the one sent was outside the limits
    pump, t = chemyx([(b"set diameter 39.5\r", b"3.256\r\n")])
    with pytest.raises(DeviceRefused, match="outside its limits"):
        pump.set_diameter(39.5)
    t.assert_done()


def test_chemyx_range_checks_send_nothing():
    pump, t = chemyx([])
    with pytest.raises(RangeError):
        pump.set_diameter(0.1)  # below 0.103 mm [KB-CMD]
    with pytest.raises(RangeError):
        pump.infuse(0.6, 1.0)  # over the 0.5 mL syringe
    with pytest.raises(RangeError):
        pump.withdraw(0.1, 10.5)  # over max_rate_mL_min
    with pytest.raises(RangeError):
        pump.run_steps([(0.1, 1.0), (-0.1, 1.0)])  # infuse and withdraw in one program
    with pytest.raises(RangeError):
        pump.set_units("L/s")
    assert t.sent == []


def test_chemyx_busy_silent_and_stalled():
    pump, t = chemyx([(b"pump status\r", b"1\r\n")])
    with pytest.raises(DeviceBusy):
        pump.infuse(0.1, 1.0)
    pump, t = chemyx([(b"pump status\r", None)])
    with pytest.raises(DeviceTimeout):
        pump.status()
    pump, t = chemyx([(b"pump status\r", b"4\r\n")])
    with pytest.raises(Exception, match="stalled"):
        pump.status()


def test_chemyx_emulator_terminators():
    # [KB-RS232]: "\r" or "\r\n" end a command; "\n" alone is not valid
    emulator = ChemyxEmulator(SimLab(seed=1), "SP1", "Cs-oleate", 0.5)
    assert emulator.receive(b"set units 2\n") == b""  # no answer: not a terminator
    emulator = ChemyxEmulator(SimLab(seed=1), "SP1", "Cs-oleate", 0.5)
    assert emulator.receive(b"set units 2\r\n") == b"2\r\n"
    assert emulator.receive(b"set diameter 11.73\r") == b"11.73\r\n"
    assert emulator.receive(b"set diameter 99\r") == b"11.73\r\n"  # refused: echoes the old one


def test_chemyx_driver_over_a_pty_moves_the_simulated_syringe():
    world = SimLab(seed=2)
    bridge = PtyBridge(ChemyxEmulator(world, "SP1", "Cs-oleate", 0.5))
    pump = ChemyxFusion6000(
        SerialTransport(bridge.port, 9600), "SP1", capacity_mL=0.5, diameter_mm=3.256,
        max_rate_mL_min=5.0, timeout_s=1.0,
    )  # fmt: skip
    try:
        duration = pump.withdraw(0.3, 1.0)
        assert duration == pytest.approx(18.0)
        assert pump.status().busy
        world.clock.sleep(duration + 1)
        state = pump.status()
        assert not state.busy and state.volume_mL == pytest.approx(0.3, abs=1e-6)
        assert world.syringe_volume_mL("SP1") == pytest.approx(0.3)
        pump.run_steps([(0.1, 1.0), (0.05, 0.5)])  # two infuse steps, run one after the other
        world.clock.sleep(7)
        assert pump.status().busy  # the second step started when the first ended
        world.clock.sleep(7)
        state = pump.status()
        assert not state.busy and state.volume_mL == pytest.approx(0.15, abs=1e-6)
        assert world.syringe_volume_mL("SP1") == pytest.approx(0.15)
        pump.infuse(0.1, 0.1)
        pump.stop()
        assert not pump.status().busy
    finally:
        pump.close()
        bridge.close()


# -- Modbus framing shared by the F4T and the 2F-85 ---------------------------------------------
def test_crc16_matches_the_frames_printed_by_robotiq():
    # [2F-IM] p. 78 and p. 56: the CRC is sent low byte first
    for frame in ("09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19", "09 04 07 D0 00 01 30 0F",
                  "09 04 02 31 00 4D 61", "09 10 03 E8 00 03 01 30"):  # fmt: skip
        raw = h(frame)
        assert struct.pack("<H", crc16(raw[:-2])) == raw[-2:]


def test_float_words_low_order_first():
    # [TE-F4T] p. 46: "the low order word contains the two low bytes of the 32-bit parameter"
    assert float_to_words(100.0) == [0x0000, 0x42C8]
    assert words_to_float([0x0000, 0x42C8]) == 100.0


# -- Watlow F4T ---------------------------------------------------------------------------------
@pytest.fixture
def f4t_tcp():
    world = SimLab(seed=4)
    emulator = WatlowF4TEmulator(world, framing=TCP)
    bridge = TcpBridge(emulator)
    sent: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        if sending:
            sent.append(data)
        return data

    client = open_modbus(bridge.url, 9600, 1.0, 1, trace)
    yield world, emulator, WatlowF4T(client, "H1"), sent
    client.close()
    bridge.close()


def test_f4t_setpoint_ramp_and_enable_exact_frames(f4t_tcp):
    world, emulator, f4t, sent = f4t_tcp
    f4t.set_ramp(5.0)
    f4t.set_setpoint(100.0)
    pdus = [frame[7:] for frame in sent]  # after the MBAP header
    assert [frame[2:4] for frame in sent] == [b"\x00\x00"] * len(sent)  # protocol id 0
    assert pdus == [
        h("06 0A EA 00 55"),  # Ramp Action 2794 <- Set Point (85) [TE-F4T] p. 46
        h("06 0A EC 00 39"),  # Ramp Scale 2796 <- deg/Minutes (57)
        h("10 0A EE 00 02 04 00 00 40 A0"),  # Ramp Rate 2798 <- 5.0, low word first
        h("10 0A DE 00 02 04 00 00 42 C8"),  # Set Point 2782 <- 100.0
        h("06 0A AA 00 0A"),  # Control Mode 2730 <- Auto (10) [ESPEC]
    ]
    assert all(frame[6] == 1 for frame in sent)  # unit 1 [TE-F4T] p. 14
    assert world.heater_setpoint_C() == 100.0 and world.heater_ramp_C_min() == 5.0


def test_f4t_status_over_tcp(f4t_tcp):
    world, emulator, f4t, sent = f4t_tcp
    assert f4t.identify() == ["Watlow F4T", "ok"]
    off = f4t.status()
    assert off.setpoint_C is None and not off.stable and not off.tripped
    f4t.set_ramp(20.0)
    f4t.set_setpoint(120.0)
    world.clock.sleep(1200)
    state = f4t.status()
    assert state.setpoint_C == 120.0 and state.stable
    assert abs(state.temperature_C - 120.0) <= 1.0
    f4t.off()
    assert world.heater_setpoint_C() is None


def test_f4t_refusals(f4t_tcp):
    world, emulator, f4t, sent = f4t_tcp
    with pytest.raises(RangeError):
        f4t.set_setpoint(300.0)  # within the driver's range, refused by the controller (exc. 3)
    with pytest.raises(RangeError):
        f4t.set_ramp(0.0)  # refused locally: nothing sent
    emulator.words[1328] = 30  # display units F
    with pytest.raises(DeviceRefused, match="not °C"):
        f4t.identify()


def test_f4t_alarm_is_reported_as_a_trip(f4t_tcp):
    world, emulator, f4t, sent = f4t_tcp
    f4t.arm_overtemp_alarm(150.0)
    assert [frame[7:] for frame in sent[-3:]] == [
        h("06 05 32 00 4C"),  # Alarm 1 Type 1330 <- Process Alarm (76) [F4T-UG] p. 225
        h("06 05 34 00 25"),  # Sides 1332 <- High (37)
        h("10 05 36 00 02 04 00 00 43 16"),  # High Set Point 1334 <- 150.0
    ]
    f4t.set_setpoint(100.0)
    world.clock.sleep(900)
    assert not f4t.status().tripped
    emulator.report_overtemperature(80.0)
    assert f4t.status().tripped


def test_f4t_over_rtu_on_a_pty():
    world = SimLab(seed=5)
    bridge = PtyBridge(WatlowF4TEmulator(world))
    sent: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        if sending:
            sent.append(data)
        return data

    client = open_modbus(bridge.port, 9600, 1.0, 1, trace)
    try:
        f4t = WatlowF4T(client, "H1")
        f4t.set_setpoint(90.0)
        assert sent[0] == h("01 10 0A DE 00 02 04 00 00 42 B4") + struct.pack(
            "<H", crc16(h("01 10 0A DE 00 02 04 00 00 42 B4"))
        )
        assert f4t.status().setpoint_C == 90.0
    finally:
        client.close()
        bridge.close()


# -- Robotiq 2F-85 ------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_robotiq_emulator_answers_the_manuals_frames():
    clock = Clock()
    grip = Robotiq2F85Emulator(clock, object_at=0xBD)
    # [HE-IM] p. 50: set rACT; [2F-IM] p. 78: the write's answer
    assert grip.receive(h("09 10 03 E8 00 03 06 01 00 00 00 00 00 72 E1")) == h(
        "09 10 03 E8 00 03 01 30"
    )
    # [2F-IM] p. 56 (function 04) and [HE-IM] p. 51 (function 03): activation in progress
    assert grip.receive(h("09 04 07 D0 00 01 30 0F")) == h("09 04 02 11 00 54 A1")
    assert grip.receive(h("09 03 07 D0 00 01 85 CF")) == h("09 03 02 11 00 55 D5")
    clock.t = 5.0
    assert grip.receive(h("09 04 07 D0 00 01 30 0F")) == h("09 04 02 31 00 4D 61")
    assert grip.receive(h("09 03 07 D0 00 01 85 CF")) == h("09 03 02 31 00 4C 15")
    # [BLOG]: close at full speed and force; [2F-IM] p. 77: grasp completed on the object
    assert grip.receive(h("09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29")) == h(
        "09 10 03 E8 00 03 01 30"
    )
    clock.t = 10.0
    assert grip.receive(h("09 04 07 D0 00 03 B1 CE")) == h("09 04 06 B9 00 00 FF BD 00 5C 9A")
    # [2F-IM] p. 78: open; p. 61: still opening (position 0xBB); p. 80: opening completed
    grip.receive(h("09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19"))
    clock.t = 10.0 + 0.011 * grip._move_s
    assert grip.receive(h("09 04 07 D0 00 03 B1 CE")) == h("09 04 06 39 00 00 00 BB 10 71 06")
    clock.t = 20.0
    assert grip.receive(h("09 04 07 D0 00 03 B1 CE")) == h("09 04 06 F9 00 00 00 0D 00 17 AA")
    # a bad CRC or another unit gets no answer
    assert grip.receive(h("09 04 07 D0 00 03 B1 CF")) == b""
    other_unit = h("0A 04 07 D0 00 03")
    assert grip.receive(other_unit + struct.pack("<H", crc16(other_unit))) == b""


def test_robotiq_driver_sends_the_manuals_frames_over_a_pty():
    clock = Clock()
    bridge = PtyBridge(Robotiq2F85Emulator(clock, object_at=0xBD))
    sent: list[bytes] = []
    received: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        (sent if sending else received).append(data)
        return data

    client = open_modbus(bridge.port, 115200, 1.0, 1, trace)
    try:
        gripper = Robotiq2F85(client, "GR1", speed=255, force=255)
        gripper.reset()
        gripper.activate()
        assert gripper.status().activation == 1 and gripper.status().busy
        clock.t = 5.0
        assert gripper.identify() == ["Robotiq 2F-85", "activated"]
        gripper.grip(True)
        clock.t = 10.0
        assert gripper.gripper_closed()
        state = gripper.status()
        assert state.object == 2 and state.position == 0xBD and state.request_echo == 0xFF
        gripper.grip(False)
        clock.t = 20.0
        assert not gripper.gripper_closed() and gripper.status().position == 13
        assert sent[0] == h("09 10 03 E8 00 03 06 00 00 00 00 00 00 73 30")  # [BLOG] clear rACT
        assert sent[1] == h("09 10 03 E8 00 03 06 01 00 00 00 00 00 72 E1")  # [HE-IM] p. 50
        assert received[1] == h("09 10 03 E8 00 03 01 30")  # [2F-IM] p. 78
        assert sent[2] == h("09 04 07 D0 00 03 B1 CE")  # [2F-IM] p. 61
        assert h("09 10 03 E8 00 03 06 09 00 00 FF FF FF 42 29") in sent  # [BLOG] close
        assert h("09 10 03 E8 00 03 06 09 00 00 00 FF FF 72 19") in sent  # [2F-IM] p. 78 open
        assert h("09 04 06 B9 00 00 FF BD 00 5C 9A") in received  # [2F-IM] p. 77
        assert h("09 04 06 F9 00 00 00 0D 00 17 AA") in received  # [2F-IM] p. 80
        with pytest.raises(RangeError):
            gripper.go_to(256)
        with pytest.raises(RangeError):
            gripper.go_to(10, speed=-1)
    finally:
        client.close()
        bridge.close()


def test_robotiq_silent_gripper_times_out():
    clock = Clock()
    emulator = Robotiq2F85Emulator(clock)
    bridge = PtyBridge(emulator)
    client = open_modbus(bridge.port, 115200, 0.2, 0, None)
    try:
        emulator.misbehave("timeout")
        with pytest.raises(DeviceTimeout):
            Robotiq2F85(client, "GR1").status()
    finally:
        client.close()
        bridge.close()


# -- the daemon on lab files naming these instruments -------------------------------------------
def rpc(url: str, method: str, **params):
    reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                     "params": params}, timeout=30).json()  # fmt: skip
    return reply


def test_sdfl_rig_in_simulation_runs_pumps_and_heater_through_the_daemon():
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0, config_path=SDFL_SIM)
    try:
        modules = rpc(handle.url, "system.describe")["result"]["modules"]
        assert modules["SP1"]["driver"] == "chemyx_fusion6000"
        assert modules["H1"]["driver"] == "watlow_f4t"
        assert rpc(handle.url, "heater.set", setpoint_C=130.0)["result"]["stable"]
        for pump, reagent in (("SP1", "Cs-oleate"), ("SP2", "PbBr2"), ("SP3", "ODE")):
            reply = rpc(handle.url, "pump.fill", pump=pump, reagent=reagent, volume_mL=0.3,
                        rate_mL_min=1.0)  # fmt: skip
            assert "error" not in reply, reply
        assert handle.lab.syringe_volume_mL("SP2") == pytest.approx(0.3)
        reply = rpc(handle.url, "pump.infuse", pump="SP2", volume_mL=0.2, rate_mL_min=0.5)
        assert "error" not in reply, reply
        assert handle.lab.syringe_volume_mL("SP2") == pytest.approx(0.1)
        status = rpc(handle.url, "system.status")["result"]
        assert status["ok"] and status["modules"]["SP2"]["volume_mL"] == pytest.approx(0.1)
        # the interlock: an over-temperature read through the F4T stops the lab
        handle.emulators["H1"].report_overtemperature(80.0)
        heater = rpc(handle.url, "heater.status")["result"]
        assert heater["state"] == "fault" and "over-temperature" in heater["fault"]
        assert handle.emulators["H1"].words[2730] == 62  # the loop is Off
        assert handle.lab.heater_setpoint_C() is None
        assert rpc(handle.url, "pump.fill", pump="SP1", reagent="Cs-oleate",
                   volume_mL=0.1)["error"]["code"] == -32004  # fmt: skip
    finally:
        handle.stop()


def test_maosic_rig_with_the_robotiq_gripper_starts_in_simulation():
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0, config_path=MAOSIC_SIM)
    try:
        status = rpc(handle.url, "system.status")["result"]
        assert status["modules"]["GR1"]["state"] == "ok"
        assert rpc(handle.url, "system.describe")["result"]["modules"]["GR1"]["kind"] == "gripper"
    finally:
        handle.stop()


# -- seabreeze and the heater board's stop --------------------------------------------------------
def test_seabreeze_missing_is_a_configuration_error(monkeypatch):
    from hardware_interface.devices import seabreeze_absorbance as sb
    from hardware_interface.labconfig import ConfigError

    monkeypatch.setattr(sb, "seabreeze_available", lambda: False)
    with pytest.raises(ConfigError, match="pip install seabreeze"):
        sb.SeabreezeAbsorbance("ABS1")


def test_seabreeze_refuses_an_integration_time_mismatch(monkeypatch):
    import sys
    import types

    from hardware_interface.devices import seabreeze_absorbance as sb

    class FakeSpectrometer:
        us = 0

        @classmethod
        def from_first_available(cls):
            return cls()

        def integration_time_micros(self, us):
            FakeSpectrometer.us = us

        def wavelengths(self):
            return [450.0]

        def intensities(self):
            return [100.0 + FakeSpectrometer.us / 100.0]

    module = types.ModuleType("seabreeze.spectrometers")
    module.Spectrometer = FakeSpectrometer
    monkeypatch.setitem(sys.modules, "seabreeze", types.ModuleType("seabreeze"))
    monkeypatch.setitem(sys.modules, "seabreeze.spectrometers", module)
    monkeypatch.setattr(sb, "seabreeze_available", lambda: True)
    spec = sb.SeabreezeAbsorbance("ABS1")
    spec.take_dark(100)
    spec.take_reference(100)
    with pytest.raises(DeviceNotReady, match="100 ms, not 200 ms"):
        spec.absorbance(200)
    spec.take_dark(200)
    with pytest.raises(DeviceNotReady, match="reference spectrum was taken at 100 ms"):
        spec.absorbance(200)
    spec.take_reference(200)
    assert spec.absorbance(200).wavelength_nm == [450.0]


def test_heater_board_stop_sends_per_0_even_when_off_fails():
    from hardware_interface.devices.base import DeviceFault
    from hardware_interface.devices.heater_board import HeaterBoard
    from hardware_interface.devices.protocol import encode_frame

    t = ScriptedTransport(
        [
            (encode_frame(1, ["OFF"]), encode_frame(1, ["ER", "6", "thermocouple open"])),
            (encode_frame(2, ["PER", "0.0"]), encode_frame(2, ["OK"])),
        ]
    )
    board = HeaterBoard(t, "H1", timeout_s=0.01, retries=0)
    with pytest.raises(DeviceFault, match="thermocouple open"):
        board.stop()
    t.assert_done()


# -- the Windows start path ----------------------------------------------------------------------
WINDOWS_START = r"""
import json, socket, sys, tempfile
from pathlib import Path
for name in ("resource", "tty", "pty"):  # POSIX-only modules: absent on Windows
    sys.modules[name] = None
from hardware_interface.daemon import LabDaemon, WallClock
from hardware_interface.labconfig import ConfigError, parse_config

data = json.loads(Path("hardware_interface/examples/lab_sdfl_windows.json").read_text())
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
closed = probe.getsockname()[1]
probe.close()
for dev in data["devices"].values():  # no traffic beyond this machine: a closed local port
    if dev.get("port", "").startswith("tcp://"):
        dev["port"] = f"tcp://127.0.0.1:{closed}"
journal = Path(tempfile.mkdtemp()) / "journal.json"
try:
    LabDaemon(parse_config(data, "windows lab"), WallClock(), journal_path=journal)
except ConfigError as exc:
    print("config error:", exc)
del data["devices"]["ABS1"]
daemon = LabDaemon(parse_config(data, "windows lab"), WallClock(), journal_path=journal)
print("ports:", sorted(d.port for d in daemon.config.devices.values() if d.port.startswith("COM")))
print("offline:", sorted(m for m in daemon.config.devices if daemon.faults.offline(m)))
daemon.close()
"""


def test_windows_lab_file_starts_without_posix_only_modules():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", WINDOWS_START], cwd=root, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                       "PYTHONPATH": str(root)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("config error: ABS1") and "pip install seabreeze" in lines[0]
    assert lines[1] == "ports: ['COM3', 'COM4', 'COM5', 'COM7']"
    # COM ports do not exist here and the TCP port is closed: every device is offline, and the
    # daemon still starts (it retries a device on its next use)
    assert lines[2] == "offline: ['CR1', 'H1', 'SP1', 'SP2', 'SP3', 'SPEC1']"


# -- JASCO J-1500 through the export folder --------------------------------------------------------
# The first lines of a J-810 text export as printed in a public repository (NPOINTS cut to 3).
J810_EXPORT = (
    "TITLE\tquench buffer check\nDATA TYPE\t\nORIGIN\tJASCO\nOWNER\t\nDATE\t17/02/22\n"
    "TIME\t01:39:57\nSPECTROMETER/DATA SYSTEM\tJASCO Corp., J-810, Rev. 1.00\nRESOLUTION\t\n"
    "DELTAX\t-1\nXUNITS\tNANOMETERS\nYUNITS\tCD[mdeg]\nY2UNITS\tHT[V]\nFIRSTX\t300.0000\n"
    "LASTX\t298.0000\nNPOINTS\t3\nFIRSTY\t-0.16549\nMAXY\t7.49258\nMINY\t-2.12435\nXYDATA\n"
    "300.0000\t-0.165493\t314.681\n299.0000\t-0.177025\t314.823\n298.0000\t-0.111925\t314.968\n"
)


def jasco(tmp_path, **kwargs):
    """A driver on a new export folder; each test sets its measurement command."""
    import sys

    from hardware_interface.devices.jasco_export import JascoJ1500Export

    export = tmp_path / "export"
    export.mkdir(exist_ok=True)
    options = {"timeout_s": 10.0, "settle_s": 0.2, "poll_s": 0.05, **kwargs}
    placeholder = [sys.executable, "-c", "pass"]
    return JascoJ1500Export("SPEC1", export, command=placeholder, **options), export


def emulator_command(export, *extra):
    import sys

    return [sys.executable, "-m", "hardware_interface.sim.emulators.jasco", str(export), *extra]


def test_jasco_text_export_as_printed():
    from hardware_interface.devices.jasco_export import IncompleteExport, parse_jasco_text

    header, rows = parse_jasco_text(J810_EXPORT)
    assert header["YUNITS"] == "CD[mdeg]" and header["Y2UNITS"] == "HT[V]"
    assert rows == [[300.0, -0.165493, 314.681], [299.0, -0.177025, 314.823],
                    [298.0, -0.111925, 314.968]]  # fmt: skip
    with pytest.raises(IncompleteExport, match="2 of 3 rows"):
        parse_jasco_text(J810_EXPORT[: J810_EXPORT.rindex("298.0000")])
    with pytest.raises(IncompleteExport, match="XYDATA"):
        parse_jasco_text(J810_EXPORT[:100])


def test_jasco_reads_a_file_written_in_parts_after_the_command_returned(tmp_path):
    spec, export = jasco(tmp_path)
    spec.command = emulator_command(export, "--detach", "--pause", "0.4")
    result = spec.cd(100)
    assert len(result.wavelength_nm) == 301 and result.wavelength_nm[0] == 300.0
    assert set(result.values) == {"cd_mdeg", "absorbance"} and not result.saturated
    assert result.scalars["ht_max_V"] == pytest.approx(400.0)
    peak = result.values["cd_mdeg"][result.wavelength_nm.index(461.0)]
    assert peak > 0.5  # the positive lobe of the exciton couplet, red of 450 nm


def test_jasco_stale_files_are_never_taken(tmp_path):
    import sys

    spec, export = jasco(tmp_path, timeout_s=0.5)
    (export / "yesterday.txt").write_text(J810_EXPORT)
    spec.command = [sys.executable, "-c", "pass"]  # the software exported nothing
    with pytest.raises(DeviceTimeout, match="no new file"):
        spec.cd(100)


def test_jasco_partial_file_times_out_naming_it(tmp_path):
    import sys

    spec, export = jasco(tmp_path, timeout_s=0.6)
    script = f"open({str(export / 'cut.txt')!r}, 'w').write({J810_EXPORT[:300]!r})"
    spec.command = [sys.executable, "-c", script]
    with pytest.raises(DeviceTimeout, match="cut.txt is incomplete"):
        spec.cd(100)


def test_jasco_jcamp_export_and_refusals(tmp_path):
    import sys

    spec, export = jasco(tmp_path)
    spec.command = emulator_command(export, "--jcamp", "--pause", "0.1")
    result = spec.cd(100)
    assert len(result.values["cd_mdeg"]) == 301 and result.wavelength_nm[-1] == 600.0
    with pytest.raises(DeviceRefused, match="no absorbance channel"):
        spec.absorbance(100)
    spec.command = [sys.executable, "-c", "import sys; sys.exit(3)"]
    with pytest.raises(DeviceRefused, match="exited 3"):
        spec.cd(100)
    with pytest.raises(RangeError):
        spec.cd(0.0)


def test_jasco_macro_drop_folder(tmp_path):
    import threading

    from hardware_interface.devices.jasco_export import JascoJ1500Export
    from hardware_interface.sim.emulators import jasco as jasco_emulator

    export, drops = tmp_path / "export", tmp_path / "macros"
    export.mkdir()
    drops.mkdir()
    macro = tmp_path / "measure_cd.mcr"
    macro.write_text("measure\n")
    spec = JascoJ1500Export("SPEC1", export, macro_file=macro, macro_dir=drops, timeout_s=10.0,
                            settle_s=0.2, poll_s=0.05)  # fmt: skip

    def vendor_software() -> None:  # watches the drop folder like the vendor's macro runner
        for _ in range(200):
            found = list(drops.glob("*.mcr"))
            if found:
                assert found[0].read_text() == "measure\n"
                jasco_emulator.main([str(export), "--pause", "0.1", "--name", "run1"])
                return
            threading.Event().wait(0.02)

    worker = threading.Thread(target=vendor_software)
    worker.start()
    result = spec.absorbance(100)
    worker.join()
    assert (drops / "measure_cd-1.mcr").exists() and not list(drops.glob("*.part"))
    assert max(result.values["absorbance"]) == pytest.approx(0.325, abs=0.01)


def test_a_campaign_of_the_papers_reaction_runs_on_the_sdfl_rig_in_simulation(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    handle = start_daemon(sim=True, port=0, seed=1, watchdog_s=0, config_path=SDFL_SIM)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "maosic", "campaign", "examples/cspbbr3.json",
             "--hardware-url", handle.url, "--max", "2", "--seed", "1", "--optimizer", "random",
             "--quiet"],
            cwd=root, capture_output=True, text=True, timeout=300,
            env={"PATH": "/usr/bin:/bin", "MAOSIC_INSTANCE_PATH": str(tmp_path)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "2 of 2" in proc.stdout and "best reward" in proc.stdout
        # the Chemyx emulators really moved the syringes: each pump answered pump status polls
        assert all(handle.emulators[p].requests_seen > 10 for p in ("SP1", "SP2", "SP3"))
        assert handle.emulators["H1"].requests_seen > 10
    finally:
        handle.stop()


def test_lab_file_keys_of_the_vendor_drivers():
    from hardware_interface.labconfig import ConfigError, parse_config

    def lab(**device):
        return {"reagents": {"ODE": {"stock_mL": 10}}, "devices": {"X1": device}}

    pump = {"driver": "chemyx_fusion6000", "port": "COM3", "reagent": "ODE"}
    with pytest.raises(ConfigError, match="devices.X1.diameter_mm"):
        parse_config(lab(**pump))
    cfg = parse_config(lab(**pump, diameter_mm=4.61)).devices["X1"]
    assert (cfg.baudrate, cfg.diameter_mm, cfg.kind) == (9600, 4.61, "pump")
    cfg = parse_config(lab(driver="robotiq_2f85", port="COM6")).devices["X1"]
    assert (cfg.baudrate, cfg.unit, cfg.kind) == (115200, 9, "gripper")
    cfg = parse_config(lab(driver="watlow_f4t", port="tcp://127.0.0.1:502", loop=2)).devices["X1"]
    assert (cfg.unit, cfg.loop, cfg.kind) == (1, 2, "heater")
    with pytest.raises(ConfigError, match="devices.X1.unit"):
        parse_config(lab(driver="watlow_f4t", port="COM4", unit=300))
    with pytest.raises(ConfigError, match="devices.X1.loop"):
        parse_config(lab(driver="watlow_f4t", port="COM4", loop=True))


def test_an_f4t_reading_fahrenheit_is_refused_when_the_daemon_connects():
    from hardware_interface.devices.factory import build_driver
    from hardware_interface.labconfig import DeviceConfig

    emulator = WatlowF4TEmulator(SimLab(seed=6), framing=TCP)
    emulator.words[1328] = 30
    bridge = TcpBridge(emulator)
    try:
        with pytest.raises(DeviceRefused, match="not °C"):
            build_driver(DeviceConfig("H1", "watlow_f4t", bridge.url, 9600, 0.5, 0))
        emulator.words[1328] = 15
        heater = build_driver(DeviceConfig("H1", "watlow_f4t", bridge.url, 9600, 0.5, 0))
        assert heater.status().setpoint_C is None
        heater.close()
    finally:
        bridge.close()
