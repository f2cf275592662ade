"""Emulator of the MHB-1 STM32 heater board (heater and peristaltic channel)."""

from __future__ import annotations

import threading
from typing import Any

from hardware_interface.devices.protocol import ERR_HARDWARE_FAULT, ERR_OUT_OF_RANGE, fmt
from hardware_interface.sim.emulators.base import CommandError, LineEmulator, parse_number

SETPOINT_MIN_C = 20.0
SETPOINT_MAX_C = 250.0
RAMP_MAX_C_MIN = 60.0
DEFAULT_RAMP_C_MIN = 10.0
PERISTALTIC_MAX_RPM = 100.0


class HeaterBoardEmulator(LineEmulator):
    """Speaks the HeaterBoard command table over the world's heater model (which runs the PID
    loop, including the over-temperature cut-out at its trip temperature)."""

    model = "MHB1"

    def __init__(self, world: Any, lock: threading.RLock | None = None) -> None:
        super().__init__(lock)
        self.world = world
        self.ramp_C_min = DEFAULT_RAMP_C_MIN
        self.peristaltic_rpm = 0.0
        self.commands.update(
            {
                "TSP": self._setpoint,
                "RMP": self._ramp,
                "OFF": self._off,
                "TMP": self._temperature,
                "PID": self._set_pid,
                "GPD": self._get_pid,
                "PER": self._set_peristaltic,
                "PRS": self._get_peristaltic,
            }
        )

    def report_overtemperature(self, delta_C: float = 100.0) -> None:
        """Misbehave: the thermocouple reads `delta_C` (°C) high from now on (test hook)."""
        with self.lock:
            self.world.inject_overtemperature(delta_C)

    def _tripped(self) -> bool:
        return self.world.heater_fault() is not None

    def _setpoint(self, args: list[str]) -> list[str]:
        setpoint = parse_number(args, 0, "setpoint_C")
        if self._tripped():
            raise CommandError(ERR_HARDWARE_FAULT, "tripped")
        if not SETPOINT_MIN_C <= setpoint <= SETPOINT_MAX_C:
            raise CommandError(ERR_OUT_OF_RANGE, f"setpoint {setpoint} out of range")
        self.world.heater_set(setpoint, self.ramp_C_min)
        return []

    def _ramp(self, args: list[str]) -> list[str]:
        ramp = parse_number(args, 0, "ramp_C_min")
        if not 0.0 < ramp <= RAMP_MAX_C_MIN:
            raise CommandError(ERR_OUT_OF_RANGE, f"ramp {ramp} out of range")
        self.ramp_C_min = ramp
        setpoint = self.world.heater_setpoint_C()
        if setpoint is not None:
            self.world.heater_set(setpoint, ramp)
        return []

    def _off(self, args: list[str]) -> list[str]:
        self.world.heater_set(None, self.ramp_C_min)
        if self._tripped():
            self.world.reset_faults()  # OFF acknowledges the trip, as on the board
        return []

    def _temperature(self, args: list[str]) -> list[str]:
        temperature = float(self.world.heater_temperature_C())
        setpoint = self.world.heater_setpoint_C()
        return [
            fmt(temperature),
            "OFF" if setpoint is None else fmt(float(setpoint)),
            fmt(float(self.world.heater_power_pct())),
            "1" if setpoint is not None and self.world.heater_stable() else "0",
            "1" if self._tripped() else "0",
        ]

    def _set_pid(self, args: list[str]) -> list[str]:
        gains = tuple(parse_number(args, i, name) for i, name in enumerate(("kp", "ki", "kd")))
        if any(g < 0 for g in gains):
            raise CommandError(ERR_OUT_OF_RANGE, "negative gain")
        self.world.heater_set_pid(*gains)
        return []

    def _get_pid(self, args: list[str]) -> list[str]:
        return [fmt(g, 4) for g in self.world.heater_pid()]

    def _set_peristaltic(self, args: list[str]) -> list[str]:
        rpm = parse_number(args, 0, "rpm")
        if abs(rpm) > PERISTALTIC_MAX_RPM:
            raise CommandError(ERR_OUT_OF_RANGE, f"rpm {rpm} out of range")
        self.peristaltic_rpm = rpm
        return []

    def _get_peristaltic(self, args: list[str]) -> list[str]:
        return [fmt(self.peristaltic_rpm)]
