"""Ocean Optics USB2000+ absorption spectrometer through the `seabreeze` package (optional).

Used only in a real lab where `seabreeze` is installed (it is not a dependency of the daemon);
absorbance is computed from a dark and a reference (blank cuvette) spectrum taken with the same
integration time: A = -log10((S - D) / (R - D)). Dark and reference are stored with the
integration time they were taken at, and a sample at another integration time is refused
(counts scale with the integration time, so the ratio would be silently wrong). A lab file
naming this driver on a PC without `seabreeze` is a configuration error (ConfigError, with the
install hint), not a lost connection.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from typing import Any

from hardware_interface.devices.base import (
    ConnectionLost,
    DeviceError,
    DeviceNotReady,
    check_range,
)
from hardware_interface.devices.capabilities import Spectrum
from hardware_interface.labconfig import ConfigError

INSTALL_HINT = (
    "pip install seabreeze, then run seabreeze_os_setup once (USB rules on Linux, the driver on "
    "Windows); see docs/windows.md"
)
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
            raise ConfigError(
                f"{name}: driver usb2000_seabreeze needs the 'seabreeze' package, which is not "
                f"installed: {INSTALL_HINT}"
            )
        spectrometers = importlib.import_module("seabreeze.spectrometers")
        try:
            if serial is None:
                self._spec: Any = spectrometers.Spectrometer.from_first_available()
            else:
                self._spec = spectrometers.Spectrometer.from_serial_number(serial)
        except Exception as exc:  # noqa: BLE001 - seabreeze raises its own error types
            raise ConnectionLost(name, f"no Ocean Optics spectrometer found: {exc}") from exc
        # (integration time in µs, counts): a spectrum is only comparable at its own time
        self._dark: tuple[int, list[float]] | None = None
        self._reference: tuple[int, list[float]] | None = None

    def _micros(self, integration_ms: float) -> int:
        check_range(
            self.name,
            "integration_ms",
            integration_ms,
            INTEGRATION_MIN_MS,
            INTEGRATION_MAX_MS,
            "ms",
        )
        return int(round(integration_ms * 1000))

    def _acquire(self, micros: int) -> tuple[list[float], list[float]]:
        self._spec.integration_time_micros(micros)
        return list(self._spec.wavelengths()), list(self._spec.intensities())

    def take_dark(self, integration_ms: float) -> None:
        micros = self._micros(integration_ms)
        self._dark = (micros, self._acquire(micros)[1])

    def take_reference(self, integration_ms: float) -> None:
        micros = self._micros(integration_ms)
        self._reference = (micros, self._acquire(micros)[1])

    def absorbance(self, integration_ms: float) -> Spectrum:
        micros = self._micros(integration_ms)
        if self._dark is None or self._reference is None:
            raise DeviceError(self.name, "take a dark and a reference spectrum first")
        for label, (taken_us, _) in (("dark", self._dark), ("reference", self._reference)):
            if taken_us != micros:
                raise DeviceNotReady(
                    self.name,
                    f"the {label} spectrum was taken at {taken_us / 1000:g} ms, not "
                    f"{micros / 1000:g} ms: take dark and reference at this integration time",
                )
        wl, sample = self._acquire(micros)
        dark, reference = self._dark[1], self._reference[1]
        values = []
        for s, d, r in zip(sample, dark, reference, strict=True):
            ratio = (s - d) / (r - d) if r - d > 0 else 0.0
            values.append(-math.log10(ratio) if ratio > 0 else float("inf"))
        saturated = max(sample) >= SATURATION_COUNTS or any(math.isinf(v) for v in values)
        values = [v if math.isfinite(v) else 4.0 for v in values]  # JSON has no infinity
        return Spectrum(wl, {"absorbance": values}, saturated, {})

    def stop(self) -> None:
        """Nothing moves or heats: an idle spectrometer is already safe."""

    def close(self) -> None:
        self._spec.close()
