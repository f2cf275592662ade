"""Limits and interlocks the daemon enforces whatever the caller sends.

The checks are pure functions of the request and the devices' reported state, so they are
testable without hardware; `FaultBook` keeps the latched faults that `system.status` reports
and that refuse further commands (-32004) until `system.reset_faults`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hardware_interface.errors import FAULT, LIMIT_EXCEEDED, NOT_READY, OFFLINE, REAGENT, AppError

VOLUME_SLACK_ML = 1e-4  # 0.1 uL: the wire carries volumes rounded to 0.1 uL
MAX_WAIT_S = 86400.0  # longest wait a single call may ask for (s): one day
SHOWN_CHARS = 40  # characters of a caller's string quoted back in an error


def shown(value: object) -> str:
    """repr() of a caller's value for an error message or its data, cut to SHOWN_CHARS.

    A 100 kB "pump" name must not come back whole in the error (nor in the log line of it).
    """
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def module_name(value: str) -> str:
    """A caller-supplied module/reagent name as it may appear in an error's data."""
    return value if len(value) <= SHOWN_CHARS else value[: SHOWN_CHARS - 3] + "..."


@dataclass(frozen=True)
class SafetyLimits:
    """Lab-wide safety limits (from the lab configuration's "safety" section).

    min_setpoint_C / max_setpoint_C: allowed heater setpoints (°C).
    overtemp_trip_C: a temperature reading above this triggers an emergency stop (°C).
    max_ramp_C_min: fastest allowed setpoint ramp (°C/min).
    max_flow_mL_min: fastest allowed rate of any pump (mL/min); each pump may be lower.
    require_stable_heater: reagents may flow into the reactor only with the heater on and stable.
    """

    min_setpoint_C: float = 20.0
    max_setpoint_C: float = 200.0
    overtemp_trip_C: float = 210.0
    max_ramp_C_min: float = 60.0
    max_flow_mL_min: float = 5.0
    require_stable_heater: bool = True

    def __post_init__(self) -> None:
        if not self.min_setpoint_C < self.max_setpoint_C < self.overtemp_trip_C:
            raise ValueError(
                "safety: need min_setpoint_C < max_setpoint_C < overtemp_trip_C, got "
                f"{self.min_setpoint_C}, {self.max_setpoint_C}, {self.overtemp_trip_C}"
            )
        if self.max_ramp_C_min <= 0 or self.max_flow_mL_min <= 0:
            raise ValueError("safety: max_ramp_C_min and max_flow_mL_min must be > 0")


def _in_range(module: str, name: str, value: float, low: float, high: float, unit: str) -> None:
    if not low <= value <= high:
        raise AppError(
            LIMIT_EXCEEDED,
            module,
            f"{module}: {name} = {value} {unit} outside the safety limits [{low}, {high}] {unit}",
            param=name,
            value=value,
            limits=[low, high],
        )


def check_setpoint(limits: SafetyLimits, module: str, setpoint_C: float, ramp_C_min: float) -> None:
    _in_range(module, "setpoint_C", setpoint_C, limits.min_setpoint_C, limits.max_setpoint_C, "°C")
    _in_range(module, "ramp_C_min", ramp_C_min, 0.1, limits.max_ramp_C_min, "°C/min")


def check_in_range(
    module: str, name: str, value: float, low: float, high: float, unit: str
) -> None:
    """``value`` (in ``unit``) within [low, high], or LIMIT_EXCEEDED naming ``name``."""
    _in_range(module, name, value, low, high, unit)


def check_wait(module: str, name: str, seconds: float) -> None:
    """A wait or timeout (s of lab time) within [0, MAX_WAIT_S]: a thread is held that long."""
    _in_range(module, name, seconds, 0.0, MAX_WAIT_S, "s")


def check_rate(limits: SafetyLimits, module: str, rate_mL_min: float, pump_max: float) -> None:
    _in_range(
        module, "rate_mL_min", rate_mL_min, 1e-3, min(pump_max, limits.max_flow_mL_min), "mL/min"
    )


def check_volume_positive(module: str, volume_mL: float) -> None:
    if not volume_mL > 0:
        raise AppError(
            LIMIT_EXCEEDED,
            module,
            f"{module}: volume_mL must be > 0, got {volume_mL}",
            param="volume_mL",
        )


def check_fill(module: str, held_mL: float, volume_mL: float, capacity_mL: float) -> None:
    """No over-fill: what the syringe holds plus the fill must fit its capacity."""
    check_volume_positive(module, volume_mL)
    if held_mL + volume_mL > capacity_mL + VOLUME_SLACK_ML:
        raise AppError(
            REAGENT,
            module,
            f"{module}: over-fill: syringe holds {held_mL:.4f} mL, +{volume_mL} mL exceeds "
            f"its {capacity_mL} mL capacity",
            held_mL=held_mL,
            capacity_mL=capacity_mL,
        )


def check_infuse(module: str, held_mL: float, volume_mL: float) -> None:
    """No infusing an empty syringe, nor more than it holds."""
    check_volume_positive(module, volume_mL)
    if volume_mL > held_mL + VOLUME_SLACK_ML:
        what = "syringe is empty" if held_mL <= VOLUME_SLACK_ML else f"holds only {held_mL:.4f} mL"
        raise AppError(
            REAGENT, module, f"{module}: cannot infuse {volume_mL} mL: {what}", held_mL=held_mL
        )


def check_stock(module: str, reagent: str, stock_mL: float, volume_mL: float) -> None:
    if volume_mL > stock_mL + VOLUME_SLACK_ML:
        raise AppError(
            REAGENT,
            module,
            f"{module}: stock bottle of {reagent} holds {stock_mL:.3f} mL, "
            f"{volume_mL} mL requested",
            reagent=reagent,
            stock_mL=stock_mL,
        )


def check_heater_ready(
    limits: SafetyLimits, heater_module: str, setpoint_C: float | None, stable: bool
) -> None:
    """Interlock: reagents flow into the reactor only once the heater holds its setpoint."""
    if not limits.require_stable_heater:
        return
    if setpoint_C is None:
        raise AppError(
            NOT_READY, heater_module, f"{heater_module}: heater is off; set it before reagents flow"
        )
    if not stable:
        raise AppError(
            NOT_READY,
            heater_module,
            f"{heater_module}: heater not yet stable at {setpoint_C} °C; reagents must wait",
        )


def is_overtemperature(limits: SafetyLimits, temperature_C: float, tripped: bool) -> bool:
    """True when a reading (or the board's own trip flag) calls for an emergency stop."""
    return tripped or temperature_C > limits.overtemp_trip_C


class FaultBook:
    """Latched faults and lost lines per module (thread-safe).

    A safety fault (emergency stop) stays until `reset()`; a lost line is cleared as soon as the
    module answers again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, str] = {}
        self._offline: dict[str, str] = {}

    def latch(self, module: str, reason: str) -> None:
        with self._lock:
            self._faults.setdefault(module, reason)

    def set_offline(self, module: str, reason: str) -> None:
        with self._lock:
            self._offline[module] = reason

    def set_online(self, module: str) -> None:
        with self._lock:
            self._offline.pop(module, None)

    def reset(self) -> list[str]:
        with self._lock:
            cleared = sorted(self._faults)
            self._faults.clear()
            return cleared

    def fault(self, module: str) -> str | None:
        with self._lock:
            return self._faults.get(module)

    def offline(self, module: str) -> str | None:
        with self._lock:
            return self._offline.get(module)

    def require_no_fault(self, module: str) -> None:
        """Refuse commands to a module with a latched fault (-32004)."""
        fault = self.fault(module)
        if fault is not None:
            raise AppError(
                FAULT,
                module,
                f"{module}: in fault ({fault}); call system.reset_faults",
                fault=fault,
            )

    def offline_error(self, module: str) -> AppError:
        lost = self.offline(module) or "line lost"
        return AppError(OFFLINE, module, f"{module}: not connected ({lost})", fault=lost)
