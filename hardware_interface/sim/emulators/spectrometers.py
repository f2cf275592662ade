"""Emulators of the MCD-1 CD/absorbance spectrometer and the MPL-1 PL spectrometer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from hardware_interface.devices.protocol import ERR_OUT_OF_RANGE
from hardware_interface.sim.emulators.base import CommandError, LineEmulator, parse_number

INTEGRATION_MIN_MS = 1.0
# The CD acquisition scans the monochromator over the window (a JASCO J-1500 offers scan speeds
# of 1-10000 nm/min; a CD spectrum with usable noise is taken far below the top speed). 200 nm/min
# over 300-700 nm is a 2 min scan, the order of the paper's ~2 min loop. Assumed, not measured.
CD_SCAN_NM_PER_MIN = 200.0
ABS_READOUT_S = 0.2  # s of diode-array readout on top of the integration time
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
        self._acquiring_s = 0.0  # lab time the last answered command's acquisition takes

    def receive(self, data: bytes) -> bytes:
        """Answer, then take the acquisition's lab time before the reply leaves: outside the
        shared lock, so the rest of the lab (pumps, heater, arm) goes on while this scans."""
        out = super().receive(data)
        with self.lock:
            acquiring, self._acquiring_s = self._acquiring_s, 0.0
        if acquiring > 0.0:
            self.world.clock.sleep(acquiring)
        return out

    def _absorbance(self, args: list[str]) -> list[str]:
        integration = _integration(args)
        spectrum = self.world.measure_absorbance(integration)
        self._acquiring_s = integration / 1000.0 + ABS_READOUT_S
        wl = list(spectrum["wavelength_nm"])
        return [
            "1" if spectrum.get("saturated") else "0",
            str(len(wl)),
            *_block(wl, 2),
            *_block(spectrum["absorbance"], 5),
        ]

    def _cd(self, args: list[str]) -> list[str]:
        integration = _integration(args)
        spectrum = self.world.measure_cd(integration)
        wl = list(spectrum["wavelength_nm"])
        span_nm = float(max(wl) - min(wl)) if wl else 0.0
        # the slower of the scan and the integration per point decides (a long integration time
        # per point slows the scan down)
        self._acquiring_s = max(span_nm / CD_SCAN_NM_PER_MIN * 60.0, len(wl) * integration / 1e3)
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
