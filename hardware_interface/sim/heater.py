"""Physics of the heater: a copper block with a 100 W cartridge under the STM32's PID.

The block is a first-order lag (heat capacity, loss to the room); the firmware ramps its setpoint
at a finite rate and runs a PID with anti-windup every HEATER_STEP_S.  The model is integrated
lazily up to the time of each query with the exact first-order solution per control period, so
its cost is a few microseconds per simulated control period and nothing while nobody asks.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from hardware_interface.sim import rig


class HeaterModel:
    """State of the heated block; not thread-safe on its own (SimLab holds the lock).

    Temperatures in °C, times in simulated seconds, power in % of HEATER_POWER_W.
    """

    # History kept for the reactor's temperature integrals: samples older than this are dropped.
    HISTORY_S = 4 * 3600.0

    def __init__(self, t0_s: float = 0.0, ripple_phase: float = 0.0) -> None:
        self._t = t0_s
        self._temp = rig.AMBIENT_C
        self._setpoint: float | None = None  # final setpoint; None = off
        self._sp_now = rig.AMBIENT_C  # ramping setpoint the PID follows
        self._ramp = rig.HEATER_DEFAULT_RAMP_C_MIN
        self._integral = 0.0
        self._power = 0.0
        self._kp, self._ki, self._kd = rig.HEATER_PID_KP, rig.HEATER_PID_KI, rig.HEATER_PID_KD
        self._in_band_since: float | None = None
        self._offset = 0.0  # injected sensor offset (fault injection)
        self._fault: str | None = None
        self._ripple_phase = ripple_phase
        # Cumulative integral of the block temperature (°C s) at control-period boundaries, so the
        # mean temperature a fluid parcel saw over any interval is one interpolation.
        # Per control period i (starting at _hist_t[i]): start temperature and asymptote.
        self._hist_t: list[float] = [t0_s]
        self._hist_int: list[float] = [0.0]
        self._hist_temp: list[float] = [self._temp]
        self._hist_tinf: list[float] = [rig.AMBIENT_C]

    # --- commands -----------------------------------------------------------------------------
    def set(self, now_s: float, setpoint_C: float | None, ramp_C_min: float) -> None:
        """New setpoint (°C; None = off) and ramp (°C/min), effective at ``now_s``."""
        self.advance(now_s)
        if setpoint_C is not None and self._fault is not None:
            raise RuntimeError(f"heater is tripped ({self._fault}); clear the fault first")
        if setpoint_C is not None and setpoint_C == self._setpoint:
            # Same setpoint again (e.g. only the ramp changed): keep the stability record.
            self._ramp = ramp_C_min
            return
        if setpoint_C is not None and self._setpoint is None:
            # Bumpless start: the ramp begins at the present block temperature.
            self._sp_now = self._temp
            self._integral = 0.0
        self._setpoint = setpoint_C
        self._ramp = ramp_C_min
        self._in_band_since = None

    def set_pid(self, now_s: float, kp: float, ki: float, kd: float) -> None:
        """PID gains: kp %/K, ki %/(K s), kd % s/K."""
        self.advance(now_s)
        self._kp, self._ki, self._kd = kp, ki, kd

    def pid(self) -> tuple[float, float, float]:
        return self._kp, self._ki, self._kd

    def inject_offset(self, now_s: float, delta_C: float) -> None:
        """Make the thermocouple read ``delta_C`` high (fault injection); may trip the heater."""
        self.advance(now_s)
        self._offset = delta_C
        # The firmware's comparator acts at once (power cut mid control period).
        self._check_trip()

    def clear_fault(self, now_s: float) -> None:
        self.advance(now_s)
        self._offset = 0.0
        self._fault = None

    # --- persistence (hardware_interface.sim.state_file) ---------------------------------------
    def snapshot(self, now_s: float) -> dict[str, Any]:
        """What the board and the block would still be after a restart of the daemon."""
        self.advance(now_s)
        return {
            "temperature_C": self._temp,
            "setpoint_C": self._setpoint,
            "ramp_setpoint_C": self._sp_now,
            "ramp_C_min": self._ramp,
            "integral": self._integral,
            "power_pct": self._power,
            "pid": [self._kp, self._ki, self._kd],
            "stable_for_s": None if self._in_band_since is None else now_s - self._in_band_since,
            "fault": self._fault,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Continue from a snapshot (validated by the caller), at this model's start time.

        The PID's integral and the stability record are restored too: the board kept running
        while the daemon was away, so it still holds its setpoint, and still calls it stable.
        """
        t0 = self._t
        self._temp = float(data["temperature_C"])
        setpoint = data["setpoint_C"]
        self._setpoint = None if setpoint is None else float(setpoint)
        self._sp_now = float(data["ramp_setpoint_C"])
        self._ramp = float(data["ramp_C_min"])
        self._integral = float(data["integral"])
        self._power = float(data["power_pct"])
        self._kp, self._ki, self._kd = (float(g) for g in data["pid"])
        stable_for = data["stable_for_s"]
        self._in_band_since = None if stable_for is None else t0 - float(stable_for)
        self._fault = data["fault"]
        self._hist_t, self._hist_int = [t0], [0.0]
        self._hist_temp, self._hist_tinf = [self._temp], [self._t_inf()]

    # --- queries ------------------------------------------------------------------------------
    def temperature_C(self, now_s: float) -> float:
        """True block temperature (°C) at ``now_s``."""
        self.advance(now_s)
        return self._propagate(now_s - self._t)[0]

    def reading_C(self, now_s: float) -> float:
        """What the thermocouple reads: block temperature, control ripple, injected offset."""
        ripple = 0.0
        if self._setpoint is not None:
            phase = 2.0 * math.pi * now_s / rig.HEATER_RIPPLE_PERIOD_S + self._ripple_phase
            ripple = rig.HEATER_RIPPLE_C * math.sin(phase)
        return self.temperature_C(now_s) + ripple + self._offset

    @property
    def setpoint_C(self) -> float | None:
        return self._setpoint

    @property
    def ramp_C_min(self) -> float:
        return self._ramp

    @property
    def power_pct(self) -> float:
        return self._power

    @property
    def fault(self) -> str | None:
        return self._fault

    def stable(self, now_s: float, window_s: float = rig.HEATER_STABLE_WINDOW_S) -> bool:
        """True when the ramp is done and the block stayed within ±1 °C of it for ``window_s``."""
        self.advance(now_s)
        return self._in_band_since is not None and now_s - self._in_band_since >= window_s

    def mean_temperature_C(self, t_a: float, t_b: float) -> float:
        """Mean block temperature (°C) over [t_a, t_b]; needs t_b <= the last advance time."""
        if t_b - t_a < 1e-6:
            t_a = t_b - 1e-3
        return (self._integral_at(t_b) - self._integral_at(t_a)) / (t_b - t_a)

    def _integral_at(self, t: float) -> float:
        ts, ints = self._hist_t, self._hist_int
        if t <= ts[0]:
            # Before the kept history the block is taken to have been at ambient temperature.
            return ints[0] - (ts[0] - t) * rig.AMBIENT_C
        if t >= ts[-1]:
            return ints[-1] + self._propagate(t - ts[-1])[1]
        i = bisect.bisect_right(ts, t)
        return ints[i - 1] + self._segment_integral(i - 1, t - ts[i - 1])

    def _segment_integral(self, i: int, dt: float) -> float:
        """Exact temperature integral over the first ``dt`` s of recorded control period ``i``."""
        temp0, t_inf = self._hist_temp[i], self._hist_tinf[i]
        return t_inf * dt + (temp0 - t_inf) * rig.HEATER_TAU_S * (
            1.0 - math.exp(-dt / rig.HEATER_TAU_S)
        )

    # --- integration --------------------------------------------------------------------------
    def _t_inf(self) -> float:
        return rig.AMBIENT_C + self._power / 100.0 * rig.HEATER_POWER_W / rig.HEATER_LOSS_W_K

    def _propagate(self, dt: float) -> tuple[float, float]:
        """(temperature, temperature integral) ``dt`` s after the last control tick."""
        t_inf = self._t_inf()
        decay = math.exp(-dt / rig.HEATER_TAU_S)
        temp = t_inf + (self._temp - t_inf) * decay
        integral = t_inf * dt + (self._temp - t_inf) * rig.HEATER_TAU_S * (1.0 - decay)
        return temp, integral

    def advance(self, now_s: float) -> None:
        """Run whole control periods up to ``now_s``.

        Between ticks the power is held, so any instant in between is exact by _propagate; the
        trajectory therefore does not depend on when anybody queried it.
        """
        step = rig.HEATER_STEP_S
        while self._t + step <= now_s + 1e-9:
            self._tick(step)

    def _tick(self, dt: float) -> None:
        temp0 = self._temp
        new_temp, integral = self._propagate(dt)
        self._t += dt
        self._temp = new_temp
        self._hist_t.append(self._t)
        self._hist_int.append(self._hist_int[-1] + integral)
        if len(self._hist_t) > 2 * self.HISTORY_S / rig.HEATER_STEP_S:
            cut = len(self._hist_t) // 2
            del self._hist_t[:cut], self._hist_int[:cut]
            del self._hist_temp[:cut], self._hist_tinf[:cut]
        self._control(dt, temp0)
        self._hist_temp.append(self._temp)
        self._hist_tinf.append(self._t_inf())

    def _control(self, dt: float, temp_before: float) -> None:
        """The firmware's tick: trip check, setpoint ramp, PID -> power for the next period."""
        self._check_trip()
        if self._setpoint is None:
            self._power = 0.0
            self._in_band_since = None
            return
        target = self._setpoint
        max_move = self._ramp / 60.0 * dt
        if abs(target - self._sp_now) <= max_move:
            self._sp_now = target
        else:
            self._sp_now += math.copysign(max_move, target - self._sp_now)
        error = self._sp_now - self._temp
        # Derivative on the measurement, not on the error, so setpoint changes give no kick.
        d_meas = (self._temp - temp_before) / dt
        u = self._kp * error + self._ki * self._integral - self._kd * d_meas
        if 0.0 < u < 100.0 or (u >= 100.0 and error < 0.0) or (u <= 0.0 and error > 0.0):
            self._integral += error * dt  # conditional integration: anti-windup
        self._power = min(max(u, 0.0), 100.0)
        ramp_done = self._sp_now == target
        if ramp_done and abs(self._temp - target) <= rig.HEATER_STABLE_BAND_C:
            if self._in_band_since is None:
                self._in_band_since = self._t
        else:
            self._in_band_since = None

    def _check_trip(self) -> None:
        if self._fault is None and self._temp + self._offset > rig.HEATER_TRIP_C:
            self._fault = "overtemperature"
            self._setpoint = None
            self._power = 0.0
            self._in_band_since = None
