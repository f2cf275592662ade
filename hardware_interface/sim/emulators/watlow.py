"""Emulator of a Watlow F4T (control loop 1 and alarm 1) over the SimLab heater.

The register map is the one in hardware_interface/devices/watlow_f4t.py (sources there):
floats are IEEE 754, two registers, low-order word first. Control Mode Off (62) switches the
simulated heater off; Auto (10) runs it to the set point at the ramp rate. Alarm 1, when set as
a high-side process alarm, reports state 7 while the process value is above its high set point
(7 is this emulator's choice: the meaning of the F4T's alarm-state values other than startup,
none and 12 is not confirmed from a public document); an alarm, or the simulated heater's own
trip, shows as an alarm state the driver reads as "tripped".
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from hardware_interface.sim.emulators.modbus import (
    ILLEGAL_ADDRESS,
    ILLEGAL_VALUE,
    RTU,
    ModbusEmulator,
    ModbusError,
)

OFF, AUTO, MANUAL = 62, 10, 54
ALARM_STATE_NONE, ALARM_STATE_HIGH = 61, 7
DEFAULT_RAMP_C_MIN = 10.0
SETPOINT_MIN_C = 20.0
SETPOINT_MAX_C = 250.0

FLOAT_REGISTERS = (1334, 1336, 1338, 2782, 2798, 2808, 2810, 2820)
WORD_DEFAULTS = {
    90: 138,  # device status OK
    1328: 15,  # display units C
    1330: 62,  # alarm 1 type off
    1332: 13,  # alarm 1 sides both
    1340: 62,  # silencing off
    1342: 60,  # non-latching
    2730: OFF,  # control mode
    2794: 62,  # ramp action off
    2796: 57,  # ramp scale minutes
}


def _words(value: float) -> tuple[int, int]:
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return low, high


def _value(low: int, high: int) -> float:
    return struct.unpack(">f", struct.pack(">HH", high, low))[0]


class WatlowF4TEmulator(ModbusEmulator):
    """Speaks the F4T registers of loop 1 for the world's heater."""

    model = "Watlow F4T"

    def __init__(self, world: Any, unit: int = 1, framing: str = RTU,
                 lock: threading.RLock | None = None) -> None:  # fmt: skip
        super().__init__(unit, framing, lock)
        self.world = world
        self.words = dict(WORD_DEFAULTS)
        self.floats = {1334: 148.9, 1336: 0.0, 1338: 0.6, 2782: 25.0, 2798: DEFAULT_RAMP_C_MIN}

    def report_overtemperature(self, delta_C: float = 100.0) -> None:
        """Misbehave: the thermocouple reads `delta_C` (°C) high from now on (test hook)."""
        with self.lock:
            self.world.inject_overtemperature(delta_C)

    # -- reading --------------------------------------------------------------------------
    def _float(self, register: int) -> float:
        if register == 2820:
            return float(self.world.heater_temperature_C())
        if register == 2808:
            return float(self.world.heater_power_pct()) if self.words[2730] != OFF else 0.0
        if register == 2810:
            return self._working_setpoint()
        return self.floats.get(register, 0.0)

    def _working_setpoint(self) -> float:
        """The ramping set point: the heater's target once stable, else the temperature."""
        if self.words[2730] == OFF or self.world.heater_setpoint_C() is None:
            return float(self.world.heater_temperature_C())
        target = self.floats[2782]
        if self.world.heater_stable():
            return target
        temperature = float(self.world.heater_temperature_C())
        return target if abs(temperature - target) <= 1.0 else temperature

    def _word(self, register: int) -> int:
        if register == 2814:
            return self.words[2730]
        if register == 1356:
            return self._alarm_state()
        if register not in self.words:
            raise ModbusError(ILLEGAL_ADDRESS)
        return self.words[register]

    def _alarm_state(self) -> int:
        if self.world.heater_fault() is not None:
            return ALARM_STATE_HIGH
        if self.words[1330] == 76 and self.words[1332] in (13, 37):
            if float(self.world.heater_temperature_C()) > self.floats[1334]:
                return ALARM_STATE_HIGH
        return ALARM_STATE_NONE

    def read_registers(self, function: int, address: int, count: int) -> list[int]:
        if function != 3:
            raise ModbusError(ILLEGAL_ADDRESS)  # the F4T map is holding registers
        out: list[int] = []
        register = address
        while len(out) < count:
            if register in FLOAT_REGISTERS:
                out.extend(_words(self._float(register)))
                register += 2
            elif register - 1 in FLOAT_REGISTERS:
                raise ModbusError(ILLEGAL_ADDRESS)  # the high word of a float alone
            else:
                out.append(self._word(register))
                register += 1
        return out[:count]

    # -- writing --------------------------------------------------------------------------
    def write_registers(self, address: int, values: list[int]) -> None:
        register, i = address, 0
        while i < len(values):
            if register in FLOAT_REGISTERS:
                if i + 1 >= len(values) or register in (2808, 2810, 2820):
                    raise ModbusError(ILLEGAL_ADDRESS)
                self._write_float(register, _value(values[i], values[i + 1]))
                register, i = register + 2, i + 2
            else:
                self._write_word(register, values[i])
                register, i = register + 1, i + 1

    def _write_float(self, register: int, value: float) -> None:
        if value != value:
            raise ModbusError(ILLEGAL_VALUE)
        if register == 2782 and not SETPOINT_MIN_C <= value <= SETPOINT_MAX_C:
            raise ModbusError(ILLEGAL_VALUE)
        if register == 2798 and not 0.0 < value <= 99999.0:
            raise ModbusError(ILLEGAL_VALUE)
        self.floats[register] = value
        if register in (2782, 2798):
            self._apply()

    def _write_word(self, register: int, value: int) -> None:
        allowed = {
            1328: (15, 30), 1330: (62, 76, 24), 1332: (13, 37, 53), 1340: (62, 63),
            1342: (60, 49), 2730: (OFF, AUTO, MANUAL), 2794: (62, 88, 85, 13), 2796: (57, 39),
        }  # fmt: skip
        if register not in allowed:
            raise ModbusError(ILLEGAL_ADDRESS)
        if value not in allowed[register]:
            raise ModbusError(ILLEGAL_VALUE)
        self.words[register] = value
        if register in (2730, 2794, 2796):
            self._apply()

    def _ramp_C_min(self) -> float:
        if self.words[2794] == 62:
            return 60.0  # no ramp: as fast as the simulated heater allows
        rate = self.floats[2798]
        return min(rate / 60.0 if self.words[2796] == 39 else rate, 60.0)

    def _apply(self) -> None:
        """Drive the world's heater from the loop's registers."""
        if self.words[2730] == OFF:
            if self.world.heater_setpoint_C() is not None or self.world.heater_fault():
                self.world.heater_set(None, self._ramp_C_min())
            if self.world.heater_fault() is not None:
                self.world.reset_faults()  # switching the loop off clears the trip
            return
        if self.world.heater_fault() is not None:
            raise ModbusError(4)
        self.world.heater_set(self.floats[2782], max(self._ramp_C_min(), 0.1))
