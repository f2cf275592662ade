"""heater.*: setpoint with ramp and wait-until-stable, status, off, PID gains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware_interface import safety
from hardware_interface.errors import NOT_READY, AppError

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


HEATER_POLL_S = 5.0  # lab seconds between heater reads once near the setpoint
HEATER_MAX_POLL_S = 30.0  # longest sleep between reads while still ramping


class HeaterMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def heater_status(self) -> dict[str, Any]:
        """{"temperature_C", "setpoint_C" (null when off), "stable", "power_pct", "state"}."""
        heater = self.lab.require(self.lab.heater, "heater")
        state = self.lab.heater_state()
        return {
            "module": heater,
            "temperature_C": state.temperature_C,
            "setpoint_C": state.setpoint_C,
            "stable": state.stable,
            "power_pct": state.power_pct,
            "tripped": state.tripped,
            **self.lab.module_state(heater),
        }

    def heater_set(
        self,
        setpoint_C: float,
        ramp_C_min: float = 10.0,
        wait_stable: bool = True,
        timeout_s: float = 1800.0,
    ) -> dict[str, Any]:
        """Heat to `setpoint_C` (°C) at `ramp_C_min` (°C/min); with wait_stable, return once the
        board reports it stable (within ±1 °C for its stability window) or fail after
        `timeout_s` (s of lab time) with -32007."""
        heater = self.lab.require(self.lab.heater, "heater")
        safety.check_setpoint(self.lab.limits, heater, setpoint_C, ramp_C_min)
        safety.check_wait(heater, "timeout_s", timeout_s)
        self.lab.call(heater, lambda d: d.set_ramp(ramp_C_min))
        self.lab.call(heater, lambda d: d.set_setpoint(setpoint_C))
        self.lab.belief.note_heater(float(setpoint_C))  # before the wait, which may be long
        if wait_stable:
            self._wait_heater_stable(heater, setpoint_C, ramp_C_min, timeout_s)
        return self.heater_status()

    def _wait_heater_stable(
        self, heater: str, setpoint_C: float, ramp_C_min: float, timeout_s: float
    ) -> None:
        """Poll the heater until stable; every poll is also the over-temperature check.

        Far from the setpoint the poll waits about half the remaining ramp time (at least
        HEATER_POLL_S), so a warm-up costs a few dozen exchanges instead of one per second.
        """
        start = self.lab.clock.now()
        while True:
            state = self.lab.heater_state()
            self.lab.faults.require_no_fault(heater)
            if state.stable:
                return
            if self.lab.clock.now() - start > timeout_s:
                raise AppError(
                    NOT_READY, heater, f"{heater}: not stable at {setpoint_C} °C in {timeout_s} s"
                )
            eta_s = abs(setpoint_C - state.temperature_C) / ramp_C_min * 60.0
            self.lab.clock.sleep(min(max(0.5 * eta_s, HEATER_POLL_S), HEATER_MAX_POLL_S))

    def heater_off(self) -> dict[str, Any]:
        heater = self.lab.require(self.lab.heater, "heater")
        self.lab.call(heater, lambda d: d.off(), check_fault=False)
        self.lab.belief.note_heater(None)
        return self.heater_status()

    def heater_pid(self, kp: float, ki: float, kd: float) -> dict[str, Any]:
        """Set the PID gains (kp %/K, ki %/(K s), kd % s/K); returns the gains read back."""
        heater = self.lab.require(self.lab.heater, "heater")
        self.lab.call(heater, lambda d: d.set_pid(kp, ki, kd))
        gains = self.lab.call(heater, lambda d: d.pid())
        return {"module": heater, "kp": gains[0], "ki": gains[1], "kd": gains[2]}
