"""Ocean Optics USB2000+ absorption spectrometer through the `seabreeze` package (optional).

Used only in a real lab where `seabreeze` is installed (it is not a dependency of the daemon);
absorbance is computed from a dark and a reference (blank cuvette) spectrum taken with the same
integration time: A = -log10((S - D) / (R - D)).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from typing import Any

from hardware_interface.devices.base import ConnectionLost, DeviceError, check_range
from hardware_interface.devices.capabilities import Spectrum

INTEGRATION_MIN_MS = 1.0
INTEGRATION_MAX_MS = 65000.0
SATURATION_COUNTS = 65535.0  # 16-bit ADC of the USB2000+


def seabreeze_available() -> bool:
    return importlib.util.find_spec("seabreeze") is not None


class SeabreezeAbsorbance:
    """Absorbance from an Ocean Optics spectrometer; `serial` picks one of several units."""

    def __init__(self, name: str = "abs", serial: str | None = None) -> None:
        self.name = name
        if not seabreeze_available():
            raise ConnectionLost(name, "the 'seabreeze' package is not installed")
        spectrometers = importlib.import_module("seabreeze.spectrometers")
        try:
            if serial is None:
                self._spec: Any = spectrometers.Spectrometer.from_first_available()
            else:
                self._spec = spectrometers.Spectrometer.from_serial_number(serial)
        except Exception as exc:  # noqa: BLE001 - seabreeze raises its own error types
            raise ConnectionLost(name, f"no Ocean Optics spectrometer found: {exc}") from exc
        self._dark: list[float] | None = None
        self._reference: list[float] | None = None

    def _acquire(self, integration_ms: float) -> tuple[list[float], list[float]]:
        check_range(
            self.name,
            "integration_ms",
            integration_ms,
            INTEGRATION_MIN_MS,
            INTEGRATION_MAX_MS,
            "ms",
        )
        self._spec.integration_time_micros(int(integration_ms * 1000))
        return list(self._spec.wavelengths()), list(self._spec.intensities())

    def take_dark(self, integration_ms: float) -> None:
        self._dark = self._acquire(integration_ms)[1]

    def take_reference(self, integration_ms: float) -> None:
        self._reference = self._acquire(integration_ms)[1]

    def absorbance(self, integration_ms: float) -> Spectrum:
        if self._dark is None or self._reference is None:
            raise DeviceError(self.name, "take a dark and a reference spectrum first")
        wl, sample = self._acquire(integration_ms)
        values = []
        for s, d, r in zip(sample, self._dark, self._reference, strict=True):
            ratio = (s - d) / (r - d) if r - d > 0 else 0.0
            values.append(-math.log10(ratio) if ratio > 0 else float("inf"))
        saturated = max(sample) >= SATURATION_COUNTS or any(math.isinf(v) for v in values)
        values = [v if math.isfinite(v) else 4.0 for v in values]  # JSON has no infinity
        return Spectrum(wl, {"absorbance": values}, saturated, {})

    def stop(self) -> None:
        """Nothing moves or heats: an idle spectrometer is already safe."""

    def close(self) -> None:
        self._spec.close()
