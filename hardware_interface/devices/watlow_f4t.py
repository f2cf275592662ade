"""Driver of the Watlow F4T PID temperature controller over Modbus (TCP, or RTU on its serial
port), through pymodbus.

Sources (facts only; no vendor code is used):
  [F4T-UG]  Watlow "F4T Controller Setup and Operations User's Guide" 0600-0093-0000 Rev. F,
            Chapter 6 Appendix, p. 223: registers are Modbus relative addresses; IEEE 754
            32-bit floats take two registers; p. 225: Device Status register 90 (OK 138,
            Fail 32), Display Units register 1328 (F 30, C 15), Alarm 1 Type 1330 (Off 62,
            Process Alarm 76, Deviation Alarm 24), Sides 1332 (Both 13, High 37, Low 53), High Set
            Point 1334 (float), Low Set Point 1336 (float), Hysteresis 1338 (float), Latching
            1342; alarm n at +100 (n-1); p. 231: control-loop parameters repeat every 160
            registers (loop n = loop 1 + 160 (n-1)).
  [TE-F4T]  TestEquity "F4T Controller" manual, Chapter 4 Communications, p. 46 (Data Map 1):
            Temperature Set Point 2782 (float, RW), Closed Loop Set Point 2810 (float, R: the
            instantaneous set point during a ramp), Ramp Action 2794 (Off 62, Startup 88,
            Set Point 85, Both 13), Ramp Scale 2796 (deg/Minutes 57, deg/Hours 39), Ramp Rate 2798
            (float); "by default, the low order word contains the two low bytes of the 32-bit
            parameter" (the float's low word is at the lower register); Chapter 3 p. 14 (the
            746854 edition): Modbus address 1, 9600 baud, parity none, word order [Low High].
  [ESPEC]   ESPEC North America ChamberConnectLibrary (github), watlowf4t.py, a chamber maker's
            F4T client: loop process value at 2820, loop output power at 2808, Control Mode
            2730 (Off 62, Auto 10, Manual 54), active control mode 2814, alarm n state at
            1356 + 100 (n-1) with 88 (startup), 61 (none) and 12 read as "not in alarm".

NOT confirmed from a public document: the meaning of alarm-state values other than 88, 61
and 12 (this driver counts every other value as "in alarm"); whether Modbus values follow the
Display Units register (the driver refuses to run unless it reads C, 15, so both readings
agree); the PID-gain registers for loop PID set 1 (not implemented: `set_pid` refuses).

Register table (loop 1; loop n adds 160 (n-1)):
    2730  Control Mode          u16   RW   62 off, 10 auto (this driver's output enable)
    2782  Set Point             f32   RW   °C
    2794  Ramp Action           u16   RW   62 off, 85 on set-point change
    2796  Ramp Scale            u16   RW   57 deg/minute
    2798  Ramp Rate             f32   RW   °C/min
    2808  Output Power          f32   R    %
    2810  Closed Loop Set Point f32   R    °C, the ramping set point
    2814  Active Control Mode   u16   R
    2820  Process Value         f32   R    °C
    1328  Display Units         u16   RW   15 C
    1330/1332/1334/1356  Alarm 1 Type / Sides / High Set Point / State
The daemon's over-temperature interlock reads `status()` like any heater's; `arm_overtemp_alarm`
also sets alarm 1 as a high-side process alarm at the trip temperature, and an active alarm 1
is reported as `tripped`, so the interlock fires on the controller's own alarm too.
"""

from __future__ import annotations

from typing import Any

from hardware_interface.devices.base import DeviceError, DeviceRefused, GarbledReply, check_range
from hardware_interface.devices.capabilities import HeaterState
from hardware_interface.devices.modbus_link import ModbusUnit

MODEL = "Watlow F4T"
DEFAULT_UNIT = 1  # [TE-F4T] p. 14
LOOP_STRIDE = 160  # [F4T-UG] p. 231
ALARM_STRIDE = 100  # [F4T-UG] p. 225
REG_DEVICE_STATUS = 90
REG_DISPLAY_UNITS = 1328
REG_ALARM_TYPE = 1330
REG_ALARM_SIDES = 1332
REG_ALARM_HIGH = 1334
REG_ALARM_STATE = 1356
REG_CONTROL_MODE = 2730
REG_SET_POINT = 2782
REG_RAMP_ACTION = 2794
REG_RAMP_SCALE = 2796
REG_RAMP_RATE = 2798
REG_OUTPUT_POWER = 2808
REG_CLOSED_LOOP_SP = 2810
REG_ACTIVE_MODE = 2814
REG_PROCESS_VALUE = 2820
OFF, AUTO, MANUAL = 62, 10, 54
RAMP_ON_SET_POINT = 85
SCALE_MINUTES = 57
UNITS_C, UNITS_F = 15, 30
DEVICE_OK = 138
ALARM_PROCESS, SIDES_HIGH = 76, 37
ALARM_QUIET_STATES = (88, 61, 12)  # [ESPEC]: startup, none, and 12
SETPOINT_MIN_C = 0.0
SETPOINT_MAX_C = 400.0  # the driver's ceiling for a reactor heater; the daemon's is lower
RAMP_MIN_C_MIN = 0.1
RAMP_MAX_C_MIN = 60.0
STABLE_BAND_C = 1.0


class WatlowF4T:
    """One control loop of a Watlow F4T. Temperatures in °C, ramp in °C/min.

    client: a connected pymodbus client (see modbus_link.open_modbus); unit: its Modbus address;
    loop: the control loop (1..4) that drives the reactor heater.
    """

    def __init__(self, client: Any, name: str = "heater", unit: int = DEFAULT_UNIT,
                 loop: int = 1) -> None:  # fmt: skip
        check_range(name, "loop", loop, 1, 4, "")
        self.name = name
        self.link = ModbusUnit(client, name, unit)
        self._offset = (int(loop) - 1) * LOOP_STRIDE
        self._ramp_C_min = 10.0

    def _loop(self, register: int) -> int:
        return register + self._offset

    def identify(self) -> list[str]:
        """Device status and display units; refuses a controller not reading in °C."""
        status = self.link.read_holding(REG_DEVICE_STATUS, 1)[0]
        units = self.link.read_holding(REG_DISPLAY_UNITS, 1)[0]
        if units != UNITS_C:
            raise DeviceRefused(
                self.name,
                units,
                "the F4T's display units are not °C (register 1328 reads "
                f"{units}; 30 is °F): set °C on the controller before use",
            )
        return [MODEL, "ok" if status == DEVICE_OK else f"status {status}"]

    def set_ramp(self, ramp_C_min: float) -> None:
        """Ramp rate for set-point changes (°C/min)."""
        check_range(self.name, "ramp_C_min", ramp_C_min, RAMP_MIN_C_MIN, RAMP_MAX_C_MIN, "°C/min")
        self.link.write_one(self._loop(REG_RAMP_ACTION), RAMP_ON_SET_POINT)
        self.link.write_one(self._loop(REG_RAMP_SCALE), SCALE_MINUTES)
        self.link.write_float(self._loop(REG_RAMP_RATE), float(ramp_C_min))
        self._ramp_C_min = float(ramp_C_min)

    def set_setpoint(self, setpoint_C: float) -> None:
        """Set point (°C), then the loop to Auto: the output is enabled."""
        check_range(self.name, "setpoint_C", setpoint_C, SETPOINT_MIN_C, SETPOINT_MAX_C, "°C")
        self.link.write_float(self._loop(REG_SET_POINT), float(setpoint_C))
        self.link.write_one(self._loop(REG_CONTROL_MODE), AUTO)

    def off(self) -> None:
        """Loop to Off: no control output."""
        self.link.write_one(self._loop(REG_CONTROL_MODE), OFF)

    def stop(self) -> None:
        self.off()

    def arm_overtemp_alarm(self, trip_C: float, alarm: int = 1) -> None:
        """Alarm `alarm` as a high-side process alarm at `trip_C` (°C)."""
        check_range(self.name, "trip_C", trip_C, SETPOINT_MIN_C, SETPOINT_MAX_C, "°C")
        base = (alarm - 1) * ALARM_STRIDE
        self.link.write_one(REG_ALARM_TYPE + base, ALARM_PROCESS)
        self.link.write_one(REG_ALARM_SIDES + base, SIDES_HIGH)
        self.link.write_float(REG_ALARM_HIGH + base, float(trip_C))

    def alarm_active(self, alarm: int = 1) -> bool:
        state = self.link.read_holding(REG_ALARM_STATE + (alarm - 1) * ALARM_STRIDE, 1)[0]
        return state not in ALARM_QUIET_STATES

    def status(self) -> HeaterState:
        mode = self.link.read_holding(self._loop(REG_CONTROL_MODE), 1)[0]
        if mode not in (OFF, AUTO, MANUAL):
            raise GarbledReply(self.name, f"control mode {mode} is not 62, 10 or 54")
        temperature = self.link.read_float(self._loop(REG_PROCESS_VALUE))
        target = self.link.read_float(self._loop(REG_SET_POINT))
        working = self.link.read_float(self._loop(REG_CLOSED_LOOP_SP))
        power = self.link.read_float(self._loop(REG_OUTPUT_POWER))
        tripped = self.alarm_active()
        if any(v != v for v in (temperature, target, working, power)):
            raise GarbledReply(self.name, "a float register reads NaN (sensor error?)")
        on = mode != OFF
        stable = (on and abs(working - target) < 0.05 and abs(temperature - target)
                  <= STABLE_BAND_C)  # fmt: skip
        return HeaterState(temperature, target if on else None, power, stable, tripped)

    def set_pid(self, kp: float, ki: float, kd: float) -> None:
        raise DeviceError(self.name, "PID gains are set on the F4T itself (registers unconfirmed)")

    def pid(self) -> tuple[float, float, float]:
        raise DeviceError(self.name, "PID gains are set on the F4T itself (registers unconfirmed)")

    def close(self) -> None:
        self.link.close()
