"""Drivers of the spectrometers that speak our line protocol: the CD spectrometer bridge (model
MCD-1, CD and absorbance in one acquisition) and the photoluminescence spectrometer (MPL-1).

Spectra travel as one long reply line: flags, the point count n, the n wavelengths (nm, 2
decimals) and then one block of n values per channel (5 decimals).
"""

from __future__ import annotations

from hardware_interface.devices.base import GarbledReply, LineDevice, check_range
from hardware_interface.devices.capabilities import Spectrum
from hardware_interface.transports import Transport

CD_MODEL = "MCD1"
PL_MODEL = "MPL1"
INTEGRATION_MIN_MS = 1.0
INTEGRATION_MAX_MS = 10000.0


def check_integration(module: str, integration_ms: float) -> None:
    """Refuse an integration time (ms) outside what the spectrometers accept."""
    check_range(
        module, "integration_ms", integration_ms, INTEGRATION_MIN_MS, INTEGRATION_MAX_MS, "ms"
    )


EXCITATION_MIN_NM = 200.0
EXCITATION_MAX_NM = 500.0
MAX_POINTS = 4096


def _parse_blocks(
    device: LineDevice, words: list[str], command: str, lead: int, channels: int
) -> tuple[list[str], list[float], list[list[float]]]:
    """Split `lead` leading fields, n, wavelengths and `channels` value blocks of a reply."""
    if len(words) < lead + 1 or not words[lead].isdigit():
        raise GarbledReply(device.name, f"{command} reply lacks the point count")
    n = int(words[lead])
    if not 0 < n <= MAX_POINTS or len(words) != lead + 1 + n * (channels + 1):
        raise GarbledReply(
            device.name,
            f"{command} reply has {len(words)} fields, expected {lead + 1 + n * (channels + 1)}",
        )
    try:
        numbers = [float(w) for w in words[lead + 1 :]]
    except ValueError as exc:
        raise GarbledReply(device.name, f"{command} reply holds a non-number") from exc
    blocks = [numbers[i * n : (i + 1) * n] for i in range(channels + 1)]
    return words[:lead], blocks[0], blocks[1:]


class CdSpectrometer(LineDevice):
    """CD spectrometer with simultaneous absorbance (as a JASCO-type instrument reports HT/abs).

    Command table (request words -> reply words after OK):
        ID        -> MCD1 <firmware>
        ABS <ms>  -> <sat 0|1> <n> <wl_1..wl_n> <A_1..A_n>
        CD <ms>   -> <sat 0|1> <n> <wl_1..wl_n> <cd_mdeg_1..n> <A_1..A_n>
        HLT       -> (none)    abort an acquisition, close the shutter
    sat = 1 when the detector saturated (absorbance too high for a valid CD reading).
    Errors: ER 3 integration time out of range, ER 4 acquisition running.

    ABS reads a diode array at once (integration plus readout). CD scans the monochromator
    across the window, as a CD instrument does, and answers when the scan is done: minutes, not
    milliseconds (the simulated MCD1 scans 300-700 nm at 200 nm/min, 2 min). So the CD reply is
    awaited up to CD_SCAN_TIMEOUT_S, not the line's usual timeout.
    """

    CD_SCAN_TIMEOUT_S = 900.0  # longest scan awaited: 400 nm at 30 nm/min, with margin

    def __init__(
        self, transport: Transport, name: str = "cd", timeout_s: float = 5.0, retries: int = 2
    ) -> None:
        super().__init__(transport, name, timeout_s, retries)

    def absorbance(self, integration_ms: float) -> Spectrum:
        """Absorbance spectrum (unitless, OD) with `integration_ms` (ms) per point."""
        check_integration(self.name, integration_ms)
        words = self._query("ABS", f"{integration_ms:.0f}")
        (sat,), wl, (absorb,) = _parse_blocks(self, words, "ABS", 1, 1)
        return Spectrum(wl, {"absorbance": absorb}, sat == "1", {})

    def cd(self, integration_ms: float) -> Spectrum:
        """CD (mdeg) and absorbance spectra with `integration_ms` (ms) per point."""
        check_integration(self.name, integration_ms)
        words = self._query("CD", f"{integration_ms:.0f}", timeout_s=self.CD_SCAN_TIMEOUT_S)
        (sat,), wl, (cd, absorb) = _parse_blocks(self, words, "CD", 1, 2)
        return Spectrum(wl, {"cd_mdeg": cd, "absorbance": absorb}, sat == "1", {})

    def stop(self) -> None:
        self._query("HLT")


class PlSpectrometer(LineDevice):
    """Photoluminescence spectrometer with a UV LED source and an absorbance channel at 300 nm.

    Command table (request words -> reply words after OK):
        ID             -> MPL1 <firmware>
        PL <ms> <nm>   -> <abs_300nm> <n> <wl_1..wl_n> <I_1..I_n>    intensity in counts
        HLT            -> (none)
    Errors: ER 3 integration time or excitation wavelength out of range.
    """

    def __init__(
        self, transport: Transport, name: str = "pl", timeout_s: float = 5.0, retries: int = 2
    ) -> None:
        super().__init__(transport, name, timeout_s, retries)

    def pl(self, integration_ms: float, excitation_nm: float) -> Spectrum:
        check_integration(self.name, integration_ms)
        check_range(
            self.name, "excitation_nm", excitation_nm, EXCITATION_MIN_NM, EXCITATION_MAX_NM, "nm"
        )
        words = self._query("PL", f"{integration_ms:.0f}", f"{excitation_nm:.1f}")
        (abs300,), wl, (intensity,) = _parse_blocks(self, words, "PL", 1, 1)
        try:
            abs_300 = float(abs300)
        except ValueError as exc:
            raise GarbledReply(self.name, f"PL abs_300nm {abs300!r} is not a number") from exc
        return Spectrum(wl, {"intensity": intensity}, False, {"abs_300nm": abs_300})

    def stop(self) -> None:
        self._query("HLT")
