"""The emulators at byte level, the maosicsim:// serial handler, and a driver over a real pty."""

from __future__ import annotations

import pytest
import serial

from hardware_interface.devices.base import DeviceTimeout, GarbledReply
from hardware_interface.devices.heater_board import HeaterBoard
from hardware_interface.devices.protocol import decode_frame, encode_frame
from hardware_interface.devices.syringe_pump import SyringePump
from hardware_interface.sim.emulators import registry
from hardware_interface.sim.emulators.base import LineDisconnected
from hardware_interface.sim.emulators.heater import HeaterBoardEmulator
from hardware_interface.sim.emulators.pty_bridge import PtyBridge
from hardware_interface.sim.emulators.pump import SyringePumpEmulator
from hardware_interface.sim.world import SimLab
from hardware_interface.transports import SerialTransport, TransportError


@pytest.fixture
def world() -> SimLab:
    return SimLab(seed=3)


@pytest.fixture
def pump(world) -> SyringePumpEmulator:
    return SyringePumpEmulator(world, "SP1", "Cs-oleate", 0.5)


def test_identify_exact_reply(pump):
    assert pump.receive(b"01 ID*2C\n") == encode_frame(1, ["OK", "MSP1", "500.0", "1.0.0"])


def test_checksum_error_and_unknown_command(pump):
    reply = decode_frame(pump.receive(b"01 ID*00\n"))
    assert reply.tag == 1 and reply.words[:2] == ["ER", "5"]
    reply = decode_frame(pump.receive(encode_frame(2, ["XYZ"])))
    assert reply.words[:2] == ["ER", "1"] and "XYZ" in " ".join(reply.words)
    reply = decode_frame(pump.receive(encode_frame(3, ["INF", "abc", "100"])))
    assert reply.words[:2] == ["ER", "2"]


def test_partial_writes_are_assembled(pump):
    request = encode_frame(4, ["STA"])
    assert pump.receive(request[:3]) == b""
    assert decode_frame(pump.receive(request[3:])).words == ["OK", "0", "0.0"]


def test_repeated_tag_is_not_executed_twice(world, pump):
    request = encode_frame(5, ["WDR", "100.0", "1000.0"])
    first = pump.receive(request)
    world.clock.sleep(10)
    assert pump.receive(request) == first  # the cached reply
    world.clock.sleep(10)
    assert world.syringe_volume_mL("SP1") == pytest.approx(0.1)
    # tag 00 is never deduplicated
    pump.receive(encode_frame(0, ["WDR", "100.0", "1000.0"]))
    world.clock.sleep(10)
    pump.receive(encode_frame(0, ["WDR", "100.0", "1000.0"]))
    world.clock.sleep(10)
    assert world.syringe_volume_mL("SP1") == pytest.approx(0.3)


def test_firmware_refuses_overfill_and_empty(world, pump):
    reply = decode_frame(pump.receive(encode_frame(1, ["INF", "50.0", "100.0"])))
    assert reply.words[:2] == ["ER", "3"] and "empty" in " ".join(reply.words)
    reply = decode_frame(pump.receive(encode_frame(2, ["WDR", "600.0", "100.0"])))
    assert reply.words[:2] == ["ER", "3"] and "over-fill" in " ".join(reply.words)


def test_misbehaviours(world, pump):
    pump.misbehave("drop")
    assert pump.receive(encode_frame(1, ["WDR", "100.0", "1000.0"])) == b""
    world.clock.sleep(10)
    assert world.syringe_volume_mL("SP1") == pytest.approx(0.1)  # executed, reply lost
    pump.misbehave("timeout")
    assert pump.receive(encode_frame(2, ["WDR", "100.0", "1000.0"])) == b""
    world.clock.sleep(10)
    assert world.syringe_volume_mL("SP1") == pytest.approx(0.1)  # hung: not executed
    pump.misbehave("garble")
    garbled = pump.receive(encode_frame(3, ["STA"]))
    with pytest.raises(ValueError):
        decode_frame(garbled)
    pump.misbehave("disconnect")
    with pytest.raises(LineDisconnected):
        pump.receive(encode_frame(4, ["STA"]))
    pump.reconnect()
    assert decode_frame(pump.receive(encode_frame(4, ["STA"]))).words[0] == "OK"
    with pytest.raises(ValueError, match="unknown misbehaviour"):
        pump.misbehave("explode")


def test_world_refusal_becomes_error_reply(world):
    heater = HeaterBoardEmulator(world)
    world.inject_overtemperature(300.0)
    status = decode_frame(heater.receive(encode_frame(1, ["TMP"]))).words
    assert status[0] == "OK" and status[5] == "1"  # trip flag
    reply = decode_frame(heater.receive(encode_frame(2, ["TSP", "120.0"]))).words
    assert reply[:2] == ["ER", "6"]


def test_serial_url_handler(world, pump):
    registry.register_lab("t-url", {"SP1": pump})
    try:
        port = serial.serial_for_url("maosicsim://t-url/SP1", timeout=0.05)
        port.write(b"01 ID*2C\n")
        assert port.read_until(b"\n").startswith(b"01 OK MSP1")
        port.close()
        with pytest.raises(TransportError, match="no module 'SP7'"):
            SerialTransport("maosicsim://t-url/SP7")
        driver = SyringePump(SerialTransport("maosicsim://t-url/SP1"), "SP1", timeout_s=0.05)
        assert driver.withdraw(0.2, 1.0) == pytest.approx(12.0)
        pump.misbehave("garble", count=3)
        with pytest.raises(GarbledReply):
            driver.status()
        pump.misbehave("timeout", count=3)
        with pytest.raises(DeviceTimeout):
            driver.status()
    finally:
        registry.unregister_lab("t-url")


def test_driver_over_a_real_pseudo_terminal(world):
    bridge = PtyBridge(HeaterBoardEmulator(world))
    try:
        heater = HeaterBoard(SerialTransport(bridge.port, 115200), "H1", timeout_s=1.0)
        assert heater.resync()[0] == "MHB1"
        heater.set_ramp(20.0)
        heater.set_setpoint(140.0)
        world.clock.sleep(900)
        state = heater.status()
        assert state.setpoint_C == 140.0 and abs(state.temperature_C - 140.0) <= 1.0
        assert state.stable
        heater.off()
        assert heater.status().setpoint_C is None
        bridge.emulator.misbehave("timeout", count=3)
        heater.timeout_s = 0.05
        with pytest.raises(DeviceTimeout):
            heater.status()
    finally:
        bridge.close()


def test_heater_emulator_reports_overtemperature_on_command(world):
    heater = HeaterBoardEmulator(world)
    heater.receive(encode_frame(1, ["TSP", "120.0"]))
    world.clock.sleep(600)
    heater.report_overtemperature(150.0)
    words = decode_frame(heater.receive(encode_frame(2, ["TMP"]))).words
    assert float(words[1]) > 220.0 and words[5] == "1"
    heater.receive(encode_frame(3, ["OFF"]))  # OFF acknowledges the trip
    words = decode_frame(heater.receive(encode_frame(4, ["TMP"]))).words
    assert words[2] == "OFF" and words[5] == "0"
