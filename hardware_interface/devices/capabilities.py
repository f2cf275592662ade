"""What the daemon needs from each kind of device, as structural types.

Any class with these methods qualifies (a real driver, a vendor-library wrapper, a test double);
the daemon's method handlers depend on these protocols only. Every capability has `stop()`, which
must leave the device safe (motion halted, heater power off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class PumpState:
    busy: bool
    volume_mL: float


@dataclass(frozen=True)
class HeaterState:
    temperature_C: float
    setpoint_C: float | None
    power_pct: float
    stable: bool
    tripped: bool


@dataclass(frozen=True)
class Spectrum:
    wavelength_nm: list[float]
    values: dict[str, list[float]]  # e.g. {"absorbance": [...], "cd_mdeg": [...]}
    saturated: bool
    scalars: dict[str, float]  # e.g. {"abs_300nm": 0.31}


@runtime_checkable
class Pump(Protocol):
    capacity_mL: float
    max_rate_mL_min: float

    def infuse(self, volume_mL: float, rate_mL_min: float) -> float:
        """Start pushing `volume_mL` out; returns the expected duration in s."""
        ...

    def withdraw(self, volume_mL: float, rate_mL_min: float) -> float: ...

    def status(self) -> PumpState: ...

    def stop(self) -> None: ...


@runtime_checkable
class Heater(Protocol):
    def set_setpoint(self, setpoint_C: float) -> None: ...

    def set_ramp(self, ramp_C_min: float) -> None: ...

    def off(self) -> None: ...

    def status(self) -> HeaterState: ...

    def stop(self) -> None: ...


@runtime_checkable
class Arm(Protocol):
    positions: tuple[str, ...]

    def move(self, position: str) -> float:
        """Start moving to a named position; returns the expected duration in s."""
        ...

    def position(self) -> tuple[str, bool]:
        """(current or target position, busy)."""
        ...

    def stop(self) -> None: ...


@runtime_checkable
class Spectrometer(Protocol):
    def stop(self) -> None: ...


@runtime_checkable
class Valves(Protocol):
    valve_count: int

    def set_valve(self, index: int, open_: bool) -> None: ...

    def valves(self) -> list[bool]: ...

    def stop(self) -> None: ...
