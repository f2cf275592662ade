"""The one documented error for spectra the analyzer cannot use.

``SpectrumError`` subclasses ``ValueError`` so callers that already catch bad input keep working.
It carries ``where`` (which spectrum or argument was bad, e.g. ``"cd.cd_mdeg"``) and ``reason``
(a short machine-readable code) so the core can store and display the failure without parsing
the message.
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "empty": "the array has no points (or too few to fit)",
    "length_mismatch": "wavelength and value arrays have different lengths",
    "not_finite": "the array holds NaN or inf values",
    "not_1d": "the array is not one-dimensional",
    "duplicate_wavelength": "the same wavelength appears twice",
    "flat": "the spectrum is flat: no peak can be told from the noise",
    "no_peak": "no peak was found where one was required",
    "bad_argument": "an argument is out of its documented range",
    "missing": "a spectrum or key the target needs was not given",
    "saturated": "the detector was saturated where the feature is measured",
    "misfit": "the fitted model leaves structure in the residual: its numbers are not trusted",
    "degenerate": "the requested number of peaks cannot be told apart in the spectrum",
}


class SpectrumError(ValueError):
    """A spectrum (or an argument describing it) that cannot be analysed.

    Attributes:
        where: the spectrum or argument at fault, e.g. ``"absorbance.wavelength_nm"``.
        reason: a key of :data:`REASONS`.
    """

    def __init__(self, message: str, *, where: str = "spectrum", reason: str = "bad_argument"):
        super().__init__(f"{where}: {message}")
        self.where = where
        self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return {"error": str(self), "where": self.where, "reason": self.reason}
