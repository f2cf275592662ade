"""Protocol tests of every driver: the exact bytes sent for each command, and the handling of
a garbled reply, a timeout, an error reply and a lost line."""

from __future__ import annotations

import pytest

from hardware_interface.devices.arduino_board import ArduinoBoard
from hardware_interface.devices.base import (
    ConnectionLost,
    DeviceBusy,
    DeviceFault,
    DeviceRefused,
    DeviceTimeout,
    GarbledReply,
    RangeError,
)
from hardware_interface.devices.heater_board import HeaterBoard
from hardware_interface.devices.robot_arm import RobotArm
from hardware_interface.devices.spectrometers import CdSpectrometer, PlSpectrometer
from hardware_interface.devices.syringe_pump import SyringePump
from tests.hardware.scripted import LOST, ScriptedTransport


def make(cls, script, **kw):
    transport = ScriptedTransport(script)
    return cls(transport, **kw), transport


# --- syringe pump -------------------------------------------------------------------------------


def test_pump_commands_exact_bytes():
    pump, t = make(
        SyringePump,
        [
            (b"01 INF 250.0 100.0*66\n", b"01 OK 150.000*2F\n"),
            (b"02 STA*64\n", b"02 OK 0 0.0*38\n"),
        ],
    )
    assert pump.infuse(0.25, 0.1) == pytest.approx(150.0)
    state = pump.status()
    assert state.busy is False and state.volume_mL == 0.0
    t.assert_done()


def test_pump_withdraw_stop_status():
    pump, t = make(SyringePump, [(b"01 WDR 500.0 1000.0*54\n", b"01 OK 30.000*18\n")])
    assert pump.withdraw(0.5, 1.0) == pytest.approx(30.0)
    pump, t = make(SyringePump, [(b"01 STP*76\n", b"01 OK*25\n")])
    pump.stop()
    pump, t = make(SyringePump, [(b"01 STA*67\n", b"01 OK 1 312.5*3F\n")])
    state = pump.status()
    assert state.busy and state.volume_mL == pytest.approx(0.3125)


def test_pump_range_checks_send_nothing():
    pump, t = make(SyringePump, [])
    with pytest.raises(RangeError, match="volume_mL = 0.6"):
        pump.infuse(0.6, 0.1)
    with pytest.raises(RangeError, match="rate_mL_min"):
        pump.infuse(0.1, 5.0)
    with pytest.raises(RangeError, match="number"):
        pump.infuse(float("nan"), 0.1)
    assert t.sent == []


def test_pump_retries_garbled_reply_with_same_tag():
    pump, t = make(
        SyringePump,
        [
            (b"01 STA*67\n", b"01 OK 1 312.5*00\n"),  # wrong checksum
            (b"01 STA*67\n", b"01 OK 1 312.5*3F\n"),
        ],
    )
    assert pump.status().volume_mL == pytest.approx(0.3125)
    t.assert_done()


def test_pump_gives_up_after_garbled_replies():
    bad = b"01 OK 1 31#.5*3F\n"
    pump, t = make(SyringePump, [(b"01 STA*67\n", bad)] * 3)
    with pytest.raises(GarbledReply, match="after 3 attempts"):
        pump.status()


def test_pump_timeout():
    pump, t = make(SyringePump, [(b"01 STA*67\n", None)] * 3)
    with pytest.raises(DeviceTimeout, match="no reply to STA"):
        pump.status()
    t.assert_done()


def test_pump_timeout_then_success():
    pump, t = make(SyringePump, [(b"01 STA*67\n", None), (b"01 STA*67\n", b"01 OK 1 312.5*3F\n")])
    assert pump.status().busy


def test_pump_busy_error_reply():
    pump, t = make(SyringePump, [(b"01 STP*76\n", b"01 ER 4 busy*1F\n")])
    with pytest.raises(DeviceBusy, match="busy"):
        pump.stop()


def test_stale_reply_is_skipped():
    # a late answer to request 01 arrives while we wait for the reply to 02
    pump, t = make(
        SyringePump,
        [(b"01 STA*67\n", None), (b"01 STA*67\n", None), (b"01 STA*67\n", None)],
    )
    with pytest.raises(DeviceTimeout):
        pump.status()
    t.script = [(b"02 STA*64\n", b"01 OK 1 312.5*3F\n02 OK 0 0.0*38\n")]
    assert pump.status().volume_mL == 0.0


def test_lost_line_is_connection_lost():
    pump, t = make(SyringePump, [(b"01 STA*67\n", LOST)])
    with pytest.raises(ConnectionLost, match="scripted line loss"):
        pump.status()


# --- heater board -------------------------------------------------------------------------------


def test_heater_commands_exact_bytes():
    heater, t = make(
        HeaterBoard,
        [
            (b"01 TSP 130.0*7A\n", b"01 OK*25\n"),
            (b"02 RMP 10.00*62\n", b"02 OK*26\n"),
        ],
    )
    heater.set_setpoint(130.0)
    heater.set_ramp(10.0)
    t.assert_done()


def test_heater_status_parsing():
    heater, _ = make(HeaterBoard, [(b"01 TMP*68\n", b"01 OK 129.6 130.0 42.5 1 0*17\n")])
    s = heater.status()
    assert (s.temperature_C, s.setpoint_C, s.power_pct, s.stable, s.tripped) == (
        129.6,
        130.0,
        42.5,
        True,
        False,
    )
    heater, _ = make(HeaterBoard, [(b"01 TMP*68\n", b"01 OK 24.8 OFF 0.0 0 1*75\n")])
    s = heater.status()
    assert s.setpoint_C is None and s.tripped


def test_heater_pid_and_peristaltic():
    heater, t = make(
        HeaterBoard,
        [
            (b"01 PID 8.0000 0.2000 1.5000*4C\n", b"01 OK*25\n"),
            (b"02 GPD*71\n", b"02 OK 8.0000 0.2000 1.5000*16\n"),
        ],
    )
    heater.set_pid(8.0, 0.2, 1.5)
    assert heater.pid() == (8.0, 0.2, 1.5)
    heater, t = make(HeaterBoard, [(b"01 PER -12.5*73\n", b"01 OK*25\n")])
    heater.set_peristaltic(-12.5)
    heater, t = make(
        HeaterBoard, [(b"01 OFF*6E\n", b"01 OK*25\n"), (b"02 PER 0.0*6B\n", b"02 OK*26\n")]
    )
    heater.stop()
    t.assert_done()


def test_heater_fault_reply_and_range():
    heater, _ = make(HeaterBoard, [(b"01 TSP 130.0*7A\n", b"01 ER 6 tripped*6E\n")])
    with pytest.raises(DeviceFault, match="tripped"):
        heater.set_setpoint(130.0)
    heater, t = make(HeaterBoard, [])
    with pytest.raises(RangeError, match="setpoint_C = 300"):
        heater.set_setpoint(300)
    with pytest.raises(RangeError, match="ramp_C_min"):
        heater.set_ramp(0)


def test_heater_garbled_status_fields():
    # valid frame, nonsense content: a garbled reply of a different kind, not retried
    heater, _ = make(HeaterBoard, [(b"01 TMP*68\n", b"01 OK*25\n")])
    with pytest.raises(GarbledReply, match="TMP reply"):
        heater.status()


# --- arduino board ------------------------------------------------------------------------------


def test_arduino_exact_bytes():
    board, t = make(ArduinoBoard, [(b"01 VLV 2 1*6E\n", b"01 OK*25\n")])
    board.set_valve(2, True)
    board, t = make(ArduinoBoard, [(b"01 VLS*68\n", b"01 OK 0 1*24\n")])
    assert board.valves() == [False, True]
    board, t = make(ArduinoBoard, [(b"01 MOV -400 200*5E\n", b"01 OK 2.000*29\n")])
    assert board.move_stepper(-400, 200) == 2.0
    board, t = make(ArduinoBoard, [(b"01 STS*75\n", b"01 OK -400 0*0C\n")])
    assert board.stepper() == (-400, False)
    board, t = make(ArduinoBoard, [(b"01 HLT*71\n", b"01 OK*25\n")])
    board.stop()
    t.assert_done()


def test_arduino_errors():
    board, t = make(ArduinoBoard, [])
    with pytest.raises(RangeError, match="valve index 3"):
        board.set_valve(3, True)
    with pytest.raises(RangeError, match="integer"):
        board.move_stepper(1.5, 100)  # type: ignore[arg-type]
    board, t = make(ArduinoBoard, [(b"01 VLS*68\n", None)] * 3)
    with pytest.raises(DeviceTimeout):
        board.valves()
    board, t = make(ArduinoBoard, [(b"01 VLS*68\n", b"01 OK 0 1*FF\n")] * 3)
    with pytest.raises(GarbledReply):
        board.valves()


# --- robot arm ----------------------------------------------------------------------------------


def test_robot_exact_bytes():
    arm, t = make(RobotArm, [(b"01 MOV cd*52\n", b"01 OK 4.500*2A\n")])
    assert arm.move("cd") == 4.5
    arm, t = make(RobotArm, [(b"01 POS*6D\n", b"01 OK cd 0*12\n")])
    assert arm.position() == ("cd", False)
    arm, t = make(RobotArm, [(b"01 GRP 1*75\n", b"01 ER 2 unknown position*55\n")])
    with pytest.raises(DeviceRefused, match="device error 2"):
        arm.grip(True)


def test_robot_unknown_position_refused_locally():
    arm, t = make(RobotArm, [])
    with pytest.raises(RangeError, match="'kitchen'"):
        arm.move("kitchen")
    arm, t = make(RobotArm, [(b"01 POS*6D\n", None)] * 3)
    with pytest.raises(DeviceTimeout):
        arm.position()
    arm, t = make(RobotArm, [(b"01 POS*6D\n", b"01 OK cd 0*13\n")] * 3)
    with pytest.raises(GarbledReply):
        arm.position()


# --- spectrometers ------------------------------------------------------------------------------


def test_cd_spectrometer_exact_bytes_and_parsing():
    spec, t = make(
        CdSpectrometer,
        [(b"01 ABS 100*60\n", b"01 OK 0 3 440.00 450.00 460.00 0.10000 0.20000 0.15000*12\n")],
    )
    s = spec.absorbance(100)
    assert s.wavelength_nm == [440.0, 450.0, 460.0]
    assert s.values["absorbance"] == [0.1, 0.2, 0.15] and not s.saturated
    spec, t = make(
        CdSpectrometer,
        [(b"01 CD 100*37\n", b"01 OK 1 2 445.00 455.00 -0.30000 0.40000 2.10000 2.30000*0F\n")],
    )
    s = spec.cd(100)
    assert s.values["cd_mdeg"] == [-0.3, 0.4] and s.values["absorbance"] == [2.1, 2.3]
    assert s.saturated


def test_cd_spectrometer_errors():
    spec, t = make(CdSpectrometer, [(b"01 ABS 100*60\n", b"01 ER 3 integration out of range*43\n")])
    with pytest.raises(RangeError, match="integration out of range"):
        spec.absorbance(100)
    spec, t = make(CdSpectrometer, [(b"01 ABS 100*60\n", None)] * 3)
    with pytest.raises(DeviceTimeout):
        spec.absorbance(100)
    # a truncated spectrum with a valid checksum is garbled content
    spec, t = make(CdSpectrometer, [(b"01 ABS 100*60\n", b"01 OK 0 3 440.00 450.00*XX\n")] * 3)
    with pytest.raises(GarbledReply):
        spec.absorbance(100)
    spec, t = make(CdSpectrometer, [])
    with pytest.raises(RangeError):
        spec.cd(0.5)


def test_pl_spectrometer():
    spec, t = make(
        PlSpectrometer,
        [(b"01 PL 100 300.0*21\n", b"01 OK 0.31200 2 440.00 450.00 1200.00000 5300.00000*3D\n")],
    )
    s = spec.pl(100, 300)
    assert s.scalars["abs_300nm"] == pytest.approx(0.312)
    assert s.values["intensity"] == [1200.0, 5300.0]
    spec, t = make(PlSpectrometer, [(b"01 PL 100 300.0*21\n", None)] * 3)
    with pytest.raises(DeviceTimeout):
        spec.pl(100, 300)
    spec, t = make(PlSpectrometer, [(b"01 PL 100 300.0*21\n", b"01 OK 0.3 2 1 2 3*00\n")] * 3)
    with pytest.raises(GarbledReply):
        spec.pl(100, 300)
    spec, t = make(PlSpectrometer, [])
    with pytest.raises(RangeError, match="excitation_nm"):
        spec.pl(100, 100)


def test_heater_timeout_and_checksum_garbled():
    heater, t = make(HeaterBoard, [(b"01 TMP*68\n", None)] * 3)
    with pytest.raises(DeviceTimeout, match="no reply to TMP"):
        heater.status()
    heater, t = make(HeaterBoard, [(b"01 TMP*68\n", b"01 OK 129.6 130.0 42.5 1 0*18\n")] * 3)
    with pytest.raises(GarbledReply, match="checksum"):
        heater.status()


def test_arduino_error_reply():
    board, t = make(ArduinoBoard, [(b"01 MOV -400 200*5E\n", b"01 ER 4 busy*1F\n")])
    with pytest.raises(DeviceBusy):
        board.move_stepper(-400, 200)


def test_pl_error_reply():
    spec, t = make(
        PlSpectrometer, [(b"01 PL 100 300.0*21\n", b"01 ER 3 integration out of range*43\n")]
    )
    with pytest.raises(RangeError, match="integration out of range"):
        spec.pl(100, 300)


def test_device_checksum_error_is_retried():
    # ER 5: the device saw a corrupted request; the driver resends the same line
    pump, t = make(
        SyringePump,
        [(b"01 STA*67\n", b"01 ER 5 checksum*0E\n"), (b"01 STA*67\n", b"01 OK 1 312.5*3F\n")],
    )
    assert pump.status().busy
    t.assert_done()


def test_resync_uses_tag_zero():
    pump, t = make(SyringePump, [(b"00 ID*2D\n", b"00 OK MSP1 500.0 1.0.0*61\n")])
    assert pump.resync() == ["MSP1", "500.0", "1.0.0"]
    t.assert_done()


def test_seabreeze_absorbance_with_a_stand_in_library(monkeypatch):
    import sys
    import types

    from hardware_interface.devices import seabreeze_absorbance as sb

    counts = {"dark": [100.0, 100.0], "ref": [10100.0, 1100.0], "sample": [1100.0, 1100.0]}
    phase = {"now": "dark"}

    class FakeSpectrometer:
        @classmethod
        def from_first_available(cls):
            return cls()

        def integration_time_micros(self, us):
            self.us = us

        def wavelengths(self):
            return [450.0, 451.0]

        def intensities(self):
            return counts[phase["now"]]

    module = types.ModuleType("seabreeze.spectrometers")
    module.Spectrometer = FakeSpectrometer
    monkeypatch.setitem(sys.modules, "seabreeze", types.ModuleType("seabreeze"))
    monkeypatch.setitem(sys.modules, "seabreeze.spectrometers", module)
    monkeypatch.setattr(sb, "seabreeze_available", lambda: True)
    spec = sb.SeabreezeAbsorbance("ABS1")
    with pytest.raises(Exception, match="dark and a reference"):
        spec.absorbance(100)
    spec.take_dark(100)
    phase["now"] = "ref"
    spec.take_reference(100)
    phase["now"] = "sample"
    result = spec.absorbance(100)
    assert result.values["absorbance"] == pytest.approx([1.0, 0.0])
    assert result.wavelength_nm == [450.0, 451.0] and not result.saturated
    with pytest.raises(RangeError):
        spec.absorbance(0.1)
