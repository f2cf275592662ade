"""Spectral features the rewards are built from.

All functions validate their input (:func:`.validate.check_spectrum`) and return plain
JSON-serialisable dicts; uncertainties are one sigma. Conditions that leave a number usable but
suspect are reported in ``flags``:

* ``"saturated"``: the detector clipped (values at or above ``saturation_limit`` or a flat run
  of at least ``SATURATION_RUN`` points at the maximum).
* ``"low_signal"``: the feature's peak is less than ``LOW_SIGNAL_Z`` times its uncertainty.
* ``"unsorted_input"``, ``"peak_at_bound"``, ``"not_converged"``, ``"ill_conditioned"``: from
  validation and fitting (see :mod:`.peaks`).

Conditions that leave no honest number raise :class:`.errors.SpectrumError` instead
(``reason="no_peak"`` when there is no absorption or PL peak to measure).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import SpectrumError
from .peaks import Peak, PeakFit, fit_peaks
from .validate import check_spectrum

SATURATION_RUN = 3  # consecutive samples stuck at the maximum that mean clipping
LOW_SIGNAL_Z = 10.0  # a feature peak weaker than this many sigma is flagged "low_signal"
EXCITON_MIN_FRACTION = 0.1  # a candidate exciton peak must be this share of the tallest peak


def saturation_flags(values: np.ndarray, saturation_limit: float | None) -> list[str]:
    """``["saturated"]`` when ``values`` reach ``saturation_limit`` or are clipped flat."""
    top = float(values.max())
    if saturation_limit is not None and top >= saturation_limit:
        return ["saturated"]
    at_top = np.isclose(values, top, rtol=0.0, atol=1e-12 * max(abs(top), 1.0))
    # Longest run of consecutive samples at the maximum: noise never repeats a float exactly.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], at_top.view(np.int8), [0]))))
    best = int((edges[1::2] - edges[0::2]).max()) if edges.size else 0
    return ["saturated"] if best >= SATURATION_RUN and np.ptp(values) > 0 else []


CLIPPED_MIN_LEFT = 30  # points that must remain after cutting a clipped edge off


def _without_clipped_edge(wl: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cut off a clipped plateau at the short-wavelength end (a dense sample's UV absorbance).

    Clipped values carry no shape; fitted as they are, the plateau takes the peaks and the
    exciton beyond it is lost. Only an edge plateau is cut: a clipped exciton peak itself
    leaves the spectrum as it is (flagged "saturated", the fit says what it can).
    """
    top = float(a.max())
    at_top = np.flatnonzero(np.isclose(a, top, rtol=0.0, atol=1e-12 * max(abs(top), 1.0)))
    if at_top.size == 0 or at_top[0] != 0 or np.any(np.diff(at_top) != 1):
        return wl, a
    start = int(at_top[-1]) + 1
    # Points just past the plateau are still bent by the detector's roll-off; skip as many
    # again as the plateau held, within reason.
    start += min(at_top.size, 10)
    if wl.size - start < CLIPPED_MIN_LEFT:
        return wl, a
    return wl[start:], a[start:]


def _peak_dict(p: Peak) -> dict[str, Any]:
    return p.to_dict()


def absorption_features(
    wavelength_nm: Any,
    absorbance: Any,
    saturation_limit: float = 3.0,
    min_fwhm_nm: float = 5.0,
    max_fwhm_nm: float = 100.0,
    where: str = "absorbance",
) -> dict[str, Any]:
    """First exciton absorption peak and the absorbance peaks.

    The first exciton peak is the longest-wavelength (lowest-energy) fitted peak that is at
    least ``EXCITON_MIN_FRACTION`` of the tallest peak; the scattering background of a
    nanocrystal suspension is modelled as ``(x_min/x)^4`` plus a linear baseline.

    Returns a dict with ``exciton_nm``, ``exciton_nm_err`` (nm), ``exciton_absorbance`` (the
    measured-model absorbance at the peak, background included) and its error,
    ``exciton_height`` (above background) and error, ``exciton_fwhm_nm`` and error,
    ``exciton_area`` (absorbance x nm), ``abs_300nm`` (model, when 300 nm is in range, else
    None), ``peaks`` (all fitted peaks), ``flags`` and ``fit`` (the PeakFit dict).

    Raises:
        SpectrumError: bad arrays, or no absorption peak (``reason="no_peak"``).
    """
    wl, a, flags = check_spectrum(wavelength_nm, absorbance, where=where)
    flags += saturation_flags(a, saturation_limit)
    if "saturated" in flags:
        wl, a = _without_clipped_edge(wl, a)
    fit = fit_peaks(
        wl,
        a,
        shape="gaussian",
        baseline_order=1,
        signed=False,
        scattering=bool(wl[0] > 0),
        min_fwhm_nm=min_fwhm_nm,
        max_fwhm_nm=max_fwhm_nm,
        where=where,
        edges=1,
    )
    flags += [f for f in fit.flags if f not in flags]
    if not fit.peaks:
        raise SpectrumError(
            "no absorption peak stands out of the noise", where=where, reason="no_peak"
        )
    tallest = max(p.height for p in fit.peaks)
    eligible = [p for p in fit.peaks if p.height >= EXCITON_MIN_FRACTION * tallest]
    exc = max(eligible, key=lambda p: p.centre_nm)
    total, total_err = fit.evaluate_with_error([exc.centre_nm])
    if exc.height_err > 0 and exc.height / exc.height_err < LOW_SIGNAL_Z:
        flags.append("low_signal")
    abs300: float | None = None
    if wl[0] <= 300.0 <= wl[-1]:
        abs300 = float(fit.evaluate([300.0])[0])
    return {
        "exciton_nm": exc.centre_nm,
        "exciton_nm_err": exc.centre_err,
        "exciton_absorbance": float(total[0]),
        "exciton_absorbance_err": float(total_err[0]),
        "exciton_height": exc.height,
        "exciton_height_err": exc.height_err,
        "exciton_fwhm_nm": exc.fwhm_nm,
        "exciton_fwhm_nm_err": exc.fwhm_err,
        "exciton_area": exc.area,
        "exciton_area_err": exc.area_err,
        "abs_300nm": abs300,
        "peaks": [_peak_dict(p) for p in fit.peaks],
        "flags": flags,
        "fit": fit.to_dict(),
    }


def cd_features(
    wavelength_nm: Any,
    cd_mdeg: Any,
    exciton_nm: float,
    window_nm: float = 20.0,
    saturation_limit: float | None = None,
    min_fwhm_nm: float = 5.0,
    max_fwhm_nm: float = 100.0,
    where: str = "cd",
    absorbance: Any = None,
) -> dict[str, Any]:
    """CD (mdeg) at the exciton wavelength and the largest |CD| within ``window_nm`` of it.

    The CD spectrum is fitted with signed Gaussians (a Cotton-effect couplet is two peaks of
    opposite sign) on a linear baseline, and read off the fitted curve, which averages the
    noise of the whole band. When no CD peak stands out, the values come from the baseline
    fit (close to zero, with their uncertainty) and ``"no_cd_peak"`` is flagged: a measured
    absence of CD, not a made-up number.

    Returns ``cd_at_exciton_mdeg`` (signed) and ``_err``, ``abs_cd_at_exciton_mdeg``,
    ``max_abs_cd_mdeg`` and ``_err`` with ``max_abs_cd_nm`` (within the window),
    ``peaks``, ``flags``, ``fit``.

    ``absorbance`` (optional, measured with the CD on the same wavelengths): where the sample
    clipped the detector at the UV end, the CD there is noise, not signal; those wavelengths
    are left out of the fit (flag ``"saturated"``), as :func:`absorption_features` does.
    """
    if not np.isfinite(exciton_nm):
        raise SpectrumError(f"must be a finite wavelength, got {exciton_nm!r}", where="exciton_nm")
    if not window_nm > 0:
        raise SpectrumError(f"must be > 0 nm, got {window_nm!r}", where="window_nm")
    wl, cd, flags = check_spectrum(wavelength_nm, cd_mdeg, where=where)
    if not wl[0] <= exciton_nm <= wl[-1]:
        raise SpectrumError(
            f"exciton at {exciton_nm:g} nm is outside the CD range {wl[0]:g}-{wl[-1]:g} nm",
            where=where,
            reason="bad_argument",
        )
    flags += saturation_flags(np.abs(cd), saturation_limit)
    if absorbance is not None:
        awl, a, _ = check_spectrum(wavelength_nm, absorbance, where=f"{where}.absorbance")
        if awl.size == wl.size and np.array_equal(awl, wl) and saturation_flags(a, None):
            kept, _ = _without_clipped_edge(awl, a)
            if kept.size < wl.size:
                cut = wl.size - kept.size
                wl, cd = wl[cut:], cd[cut:]
                if "saturated" not in flags:
                    flags.append("saturated")
                if not wl[0] <= exciton_nm:
                    raise SpectrumError(
                        f"the exciton at {exciton_nm:g} nm lies where the absorbance clipped",
                        where=where,
                        reason="saturated",
                    )
    fit: PeakFit = fit_peaks(
        wl,
        cd,
        shape="gaussian",
        baseline_order=1,
        signed=True,
        min_fwhm_nm=min_fwhm_nm,
        max_fwhm_nm=max_fwhm_nm,
        where=where,
    )
    flags += [f for f in fit.flags if f not in flags]
    if not fit.peaks:
        flags.append("no_cd_peak")
    at, at_err = fit.evaluate_with_error([exciton_nm])
    lo, hi = max(wl[0], exciton_nm - window_nm), min(wl[-1], exciton_nm + window_nm)
    grid = np.linspace(lo, hi, max(int((hi - lo) / 0.1) + 1, 2))
    curve, curve_err = fit.evaluate_with_error(grid)
    i = int(np.argmax(np.abs(curve)))
    if abs(at[0]) < LOW_SIGNAL_Z * at_err[0]:
        flags.append("low_signal")
    return {
        "exciton_nm": float(exciton_nm),
        "cd_at_exciton_mdeg": float(at[0]),
        "cd_at_exciton_mdeg_err": float(at_err[0]),
        "abs_cd_at_exciton_mdeg": float(abs(at[0])),
        "max_abs_cd_mdeg": float(abs(curve[i])),
        "max_abs_cd_mdeg_err": float(curve_err[i]),
        "max_abs_cd_nm": float(grid[i]),
        "window_nm": float(window_nm),
        "peaks": [_peak_dict(p) for p in fit.peaks],
        "flags": flags,
        "fit": fit.to_dict(),
    }


def pl_features(
    wavelength_nm: Any,
    intensity: Any,
    abs_300nm: float | None,
    saturation_limit: float | None = None,
    min_fwhm_nm: float = 5.0,
    max_fwhm_nm: float = 100.0,
    where: str = "pl",
) -> dict[str, Any]:
    """Photoluminescence: emission peak intensity PL_I, area PL_A and a PLQY proxy.

    The emission peak is the tallest fitted Gaussian. ``pl_intensity`` is its height (counts),
    ``pl_area`` its area (counts x nm), ``pl_total_area`` the area of all fitted peaks.
    ``plqy_proxy = pl_area / (1 - 10**-abs_300nm)``: emitted light per absorbed fraction at the
    300 nm excitation, comparable between runs of one set-up only (no reference dye). It is
    None, with the flag ``"no_absorbance"``, when ``abs_300nm`` is missing or not > 0.

    Raises:
        SpectrumError: bad arrays, or no emission peak (``reason="no_peak"``).
    """
    wl, y, flags = check_spectrum(wavelength_nm, intensity, where=where)
    flags += saturation_flags(y, saturation_limit)
    fit = fit_peaks(
        wl,
        y,
        shape="gaussian",
        baseline_order=1,
        signed=False,
        min_fwhm_nm=min_fwhm_nm,
        max_fwhm_nm=max_fwhm_nm,
        where=where,
    )
    flags += [f for f in fit.flags if f not in flags]
    if not fit.peaks:
        raise SpectrumError(
            "no emission peak stands out of the noise", where=where, reason="no_peak"
        )
    main = max(fit.peaks, key=lambda p: p.height)
    if main.height_err > 0 and main.height / main.height_err < LOW_SIGNAL_Z:
        flags.append("low_signal")
    plqy: float | None = None
    plqy_err: float | None = None
    a300 = None if abs_300nm is None else float(abs_300nm)
    if a300 is None or not np.isfinite(a300) or a300 <= 0:
        flags.append("no_absorbance")
    else:
        absorbed = 1.0 - 10.0 ** (-a300)
        plqy = main.area / absorbed
        plqy_err = main.area_err / absorbed
    return {
        "pl_nm": main.centre_nm,
        "pl_nm_err": main.centre_err,
        "pl_intensity": main.height,
        "pl_intensity_err": main.height_err,
        "pl_area": main.area,
        "pl_area_err": main.area_err,
        "pl_fwhm_nm": main.fwhm_nm,
        "pl_total_area": float(sum(p.area for p in fit.peaks)),
        "abs_300nm": a300,
        "plqy_proxy": plqy,
        "plqy_proxy_err": plqy_err,
        "peaks": [_peak_dict(p) for p in fit.peaks],
        "flags": flags,
        "fit": fit.to_dict(),
    }
