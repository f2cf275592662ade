"""Emulators of the MCD-1 CD/absorbance spectrometer and the MPL-1 PL spectrometer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from hardware_interface.devices.protocol import ERR_OUT_OF_RANGE
from hardware_interface.sim.emulators.base import CommandError, LineEmulator, parse_number

INTEGRATION_MIN_MS = 1.0
INTEGRATION_MAX_MS = 10000.0
EXCITATION_MIN_NM = 200.0
EXCITATION_MAX_NM = 500.0


def _block(values: Sequence[float], decimals: int) -> list[str]:
    return [f"{float(v):.{decimals}f}" for v in values]


def _integration(args: list[str]) -> float:
    integration = parse_number(args, 0, "integration_ms")
    if not INTEGRATION_MIN_MS <= integration <= INTEGRATION_MAX_MS:
        raise CommandError(ERR_OUT_OF_RANGE, "integration out of range")
    return integration


class CdSpectrometerEmulator(LineEmulator):
    """Speaks the CdSpectrometer command table; spectra come from the world's optics model."""

    model = "MCD1"

    def __init__(self, world: Any, lock: threading.RLock | None = None) -> None:
        super().__init__(lock)
        self.world = world
        self.commands.update({"ABS": self._absorbance, "CD": self._cd, "HLT": lambda a: []})

    def _absorbance(self, args: list[str]) -> list[str]:
        spectrum = self.world.measure_absorbance(_integration(args))
        wl = list(spectrum["wavelength_nm"])
        return [
            "1" if spectrum.get("saturated") else "0",
            str(len(wl)),
            *_block(wl, 2),
            *_block(spectrum["absorbance"], 5),
        ]

    def _cd(self, args: list[str]) -> list[str]:
        spectrum = self.world.measure_cd(_integration(args))
        wl = list(spectrum["wavelength_nm"])
        return [
            "1" if spectrum.get("saturated") else "0",
            str(len(wl)),
            *_block(wl, 2),
            *_block(spectrum["cd_mdeg"], 5),
            *_block(spectrum["absorbance"], 5),
        ]


class PlSpectrometerEmulator(LineEmulator):
    """Speaks the PlSpectrometer command table."""

    model = "MPL1"

    def __init__(self, world: Any, lock: threading.RLock | None = None) -> None:
        super().__init__(lock)
        self.world = world
        self.commands.update({"PL": self._pl, "HLT": lambda a: []})

    def _pl(self, args: list[str]) -> list[str]:
        integration = _integration(args)
        excitation = parse_number(args, 1, "excitation_nm")
        if not EXCITATION_MIN_NM <= excitation <= EXCITATION_MAX_NM:
            raise CommandError(ERR_OUT_OF_RANGE, "excitation out of range")
        spectrum = self.world.measure_pl(integration, excitation)
        wl = list(spectrum["wavelength_nm"])
        return [
            f"{float(spectrum.get('abs_300nm', 0.0)):.5f}",
            str(len(wl)),
            *_block(wl, 2),
            *_block(spectrum["intensity"], 5),
        ]
