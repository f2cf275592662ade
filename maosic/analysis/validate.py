"""Input checks shared by fitting, features and rewards.

Every public entry point runs its arrays through :func:`check_spectrum` first, so bad input is
reported here with the spectrum's name instead of surfacing as an obscure scipy failure later.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import SpectrumError

ArrayLike = Sequence[float] | np.ndarray
# Squares of larger numbers overflow float64 in the least-squares sums; no detector gets near.
MAX_ABS = 1e100


def as_float_array(values: object, where: str) -> np.ndarray:
    """Convert ``values`` to a 1-D float64 array or raise :class:`SpectrumError`."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SpectrumError(
            f"cannot be read as numbers ({exc})", where=where, reason="bad_argument"
        ) from None
    if arr.ndim != 1:
        raise SpectrumError(
            f"expected a 1-D array, got shape {arr.shape}", where=where, reason="not_1d"
        )
    return arr


def check_spectrum(
    wavelength_nm: object,
    values: object,
    where: str = "spectrum",
    min_points: int = 8,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate one spectrum and return it sorted by wavelength.

    Args:
        wavelength_nm: wavelengths in nm, any order, no duplicates.
        values: the signal at each wavelength (absorbance, mdeg, counts...).
        where: name used in error messages, e.g. ``"cd"``.
        min_points: fewer points than this is an error (``reason="empty"``).

    Returns:
        ``(wavelength_nm, values, flags)`` as float64 arrays sorted by wavelength; ``flags``
        holds ``"unsorted_input"`` when the input had to be sorted.

    Raises:
        SpectrumError: empty, too short, length mismatch, NaN/inf, duplicate wavelengths.
    """
    wl = as_float_array(wavelength_nm, f"{where}.wavelength_nm")
    y = as_float_array(values, f"{where}.values")
    if wl.size != y.size:
        raise SpectrumError(
            f"{wl.size} wavelengths but {y.size} values", where=where, reason="length_mismatch"
        )
    if wl.size < min_points:
        raise SpectrumError(
            f"{wl.size} points, at least {min_points} are needed", where=where, reason="empty"
        )
    for arr, name in ((wl, "wavelength_nm"), (y, "values")):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise SpectrumError(
                f"{int(bad.sum())} non-finite value(s) in {name}, first at index {first}",
                where=f"{where}.{name}",
                reason="not_finite",
            )
    for arr, name in ((wl, "wavelength_nm"), (y, "values")):
        big = np.abs(arr) > MAX_ABS
        if big.any():
            first = int(np.flatnonzero(big)[0])
            raise SpectrumError(
                f"value {arr[first]:g} at index {first} is beyond +-{MAX_ABS:g}: not a spectrum",
                where=f"{where}.{name}",
                reason="bad_argument",
            )
    flags: list[str] = []
    steps = np.diff(wl)
    if (steps <= 0).any():
        order = np.argsort(wl, kind="stable")
        wl, y = wl[order], y[order]
        steps = np.diff(wl)
        flags.append("unsorted_input")
    if (steps == 0).any():
        dup = float(wl[int(np.flatnonzero(steps == 0)[0])])
        raise SpectrumError(
            f"wavelength {dup:g} nm appears more than once",
            where=f"{where}.wavelength_nm",
            reason="duplicate_wavelength",
        )
    return wl, y, flags


def noise_sigma(values: np.ndarray) -> float:
    """Robust estimate of white-noise sigma (same units as ``values``).

    Uses the median absolute deviation of second differences: smooth peaks many points wide
    contribute almost nothing to them, so they measure the noise, not the signal. The factor
    sqrt(6) is the noise gain of the [1, -2, 1] stencil.
    """
    if values.size < 3:
        return 0.0
    d2 = values[2:] - 2.0 * values[1:-1] + values[:-2]
    mad = float(np.median(np.abs(d2 - np.median(d2))))
    return 1.4826 * mad / np.sqrt(6.0)
