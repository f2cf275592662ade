"""spectrometer.*: absorbance, CD and PL spectra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hardware_interface.devices.capabilities import Spectrum

if TYPE_CHECKING:  # the core imports the handlers to build its method table
    from hardware_interface.daemon import LabDaemon


def _spectrum_json(module: str, spectrum: Spectrum) -> dict[str, Any]:
    return {
        "module": module,
        "wavelength_nm": spectrum.wavelength_nm,
        **spectrum.values,
        **spectrum.scalars,
        "saturated": spectrum.saturated,
    }


class SpectrometerMethods:
    """JSON-RPC handlers of this group, over the shared daemon core `lab`."""

    def __init__(self, lab: LabDaemon) -> None:
        self.lab = lab

    def spectrometer_absorbance(self, integration_ms: float = 100.0) -> dict[str, Any]:
        """Absorbance spectrum: {"wavelength_nm", "absorbance", "saturated"}."""
        module = self.lab.require(self.lab.abs_spec, "absorbance spectrometer")
        return _spectrum_json(module, self.lab.call(module, lambda d: d.absorbance(integration_ms)))

    def spectrometer_cd(self, integration_ms: float = 100.0) -> dict[str, Any]:
        """CD (mdeg) and absorbance spectra: {"wavelength_nm", "cd_mdeg", "absorbance", ...}."""
        module = self.lab.require(self.lab.cd_spec, "CD spectrometer")
        return _spectrum_json(module, self.lab.call(module, lambda d: d.cd(integration_ms)))

    def spectrometer_pl(
        self, integration_ms: float = 100.0, excitation_nm: float = 300.0
    ) -> dict[str, Any]:
        """PL spectrum: {"wavelength_nm", "intensity", "abs_300nm"}."""
        module = self.lab.require(self.lab.pl_spec, "PL spectrometer")
        spectrum = self.lab.call(module, lambda d: d.pl(integration_ms, excitation_nm))
        return _spectrum_json(module, spectrum)
