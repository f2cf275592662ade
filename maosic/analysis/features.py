"""Spectral features the rewards are built from.

All functions validate their input (:func:`.validate.check_spectrum`) and return plain
JSON-serialisable dicts; uncertainties are one sigma. Conditions that leave a number usable but
suspect are reported in ``flags``:

* ``"saturated"``: the detector clipped (values at or above ``saturation_limit`` or a flat run
  of at least ``SATURATION_RUN`` points at the maximum).
* ``"low_signal"``: the feature's peak is less than ``LOW_SIGNAL_Z`` times its uncertainty.
* ``"unsorted_input"``, ``"peak_at_bound"``, ``"not_converged"``, ``"ill_conditioned"``,
  ``"clipped"`` (points at the detector's limit were left out of the fit), ``"at_range_edge"``
  (a fitted peak is cut by the end of the window): from validation and fitting (see
  :mod:`.peaks`).

Conditions that leave no honest number raise :class:`.errors.SpectrumError` instead
(``reason="no_peak"`` when there is no absorption or PL peak to measure, ``reason="misfit"``
when the fit leaves structure in its residual; ``allow_misfit=True`` returns such features
anyway, flagged ``"misfit"``, for inspection).
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


def _clipped_mask(a: np.ndarray) -> np.ndarray:
    """Samples where the absorbance clipped (at the maximum, once a run of >= SATURATION_RUN
    shows it is the detector's limit) and the samples next to them that the roll-off still
    bends (as many as the run held, at most 10, on each side). Whatever another signal
    measured there is noise."""
    top = float(a.max())
    at = np.isclose(a, top, rtol=0.0, atol=1e-12 * max(abs(top), 1.0))
    bad = np.zeros(a.size, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate(([0], at.view(np.int8), [0]))))
    runs = list(zip(edges[0::2], edges[1::2], strict=True))
    if not any(hi - lo >= SATURATION_RUN for lo, hi in runs):
        return bad
    # Once a run has shown the detector's limit, a single sample at it is clipped too (where
    # the noise straddles the limit, the clipped samples alternate with good ones).
    for lo, hi in runs:
        pad = min(int(hi - lo), 10)
        bad[max(lo - pad, 0) : hi + pad] = True
    return bad


def _peak_dict(p: Peak) -> dict[str, Any]:
    return p.to_dict()


# How far (nm, or two widths of the peak read, if more) around the wavelength a feature is read
# the fit must explain the data. A misfit elsewhere (an unexplained stretch far from the
# exciton, such as the CD of a saturated UV band or a second absorption step) does not touch
# the value read there: the fit is then kept, flagged, instead of refused.
MISFIT_REACH_NM = 40.0
MISFIT_LOCAL_SD = 6.0  # local reduced chi-square above 1 + this many standard deviations: misfit


def _refuse_misfit(
    fit: PeakFit,
    where: str,
    allow_misfit: bool,
    flags: list[str],
    read_nm: float | None = None,
    reach_nm: float = MISFIT_REACH_NM,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Raise when the fit does not explain the data where the feature is read: its features
    would be made up. With ``read_nm`` and the fitted ``data`` (wavelengths, values), a misfit
    whose residual is consistent with the noise within ``reach_nm`` of ``read_nm`` is kept,
    flagged ``misfit_elsewhere``; without them any misfit is refused."""
    if allow_misfit or "misfit" not in fit.flags:
        return
    detail = f"reduced chi-square {fit.reduced_chi2:.2f}"
    if fit.residual_z > 0:
        detail += f", a feature of z {fit.residual_z:.1f} left near {fit.residual_nm:.0f} nm"
    if read_nm is not None and data is not None and fit.noise_sigma > 0:
        wl, y = data
        near = np.abs(wl - read_nm) <= max(reach_nm, MISFIT_REACH_NM)
        n = int(near.sum())
        if n >= 10:
            local = float(np.mean(((y[near] - fit.evaluate(wl[near])) / fit.noise_sigma) ** 2))
            if local <= 1.0 + MISFIT_LOCAL_SD * np.sqrt(2.0 / n):
                if "misfit_elsewhere" not in flags:
                    flags.append("misfit_elsewhere")
                return
            detail += f"; reduced chi-square {local:.2f} within reach of {read_nm:.0f} nm"
    raise SpectrumError(
        f"the peak model does not explain this spectrum ({detail}); no feature is read off it",
        where=where,
        reason="misfit",
    )


def absorption_features(
    wavelength_nm: Any,
    absorbance: Any,
    saturation_limit: float = 3.0,
    min_fwhm_nm: float = 5.0,
    max_fwhm_nm: float = 100.0,
    where: str = "absorbance",
    allow_misfit: bool = False,
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
        SpectrumError: bad arrays, no absorption peak (``reason="no_peak"``), or a fit that
            leaves structure in its residual (``reason="misfit"``, unless ``allow_misfit``).
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
        _refuse_misfit(fit, where, allow_misfit, flags)
        raise SpectrumError(
            "no absorption peak stands out of the noise", where=where, reason="no_peak"
        )
    tallest = max(p.height for p in fit.peaks)
    eligible = [p for p in fit.peaks if p.height >= EXCITON_MIN_FRACTION * tallest]
    exc = max(eligible, key=lambda p: p.centre_nm)
    reach = 2.0 * exc.fwhm_nm
    _refuse_misfit(fit, where, allow_misfit, flags, exc.centre_nm, reach, (wl, a))
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
    allow_misfit: bool = False,
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
    clipped the detector (at the UV end or anywhere else), the CD there is noise, not signal;
    those wavelengths and the detector's roll-off next to them are left out of the fit (flag
    ``"saturated"``). An exciton inside such a stretch raises ``reason="saturated"``.

    A fit that leaves structure in its residual raises ``SpectrumError(reason="misfit")``
    (``allow_misfit=True`` returns it, flagged ``"misfit"``).
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
            # Every clipped stretch is left out, not only a plateau at the UV end: a dense
            # sample can clip at its exciton too, and the CD there is detector noise.
            bad = _clipped_mask(a)
            if bad.any():
                if bad[int(np.argmin(np.abs(wl - exciton_nm)))]:
                    raise SpectrumError(
                        f"the exciton at {exciton_nm:g} nm lies where the absorbance clipped",
                        where=where,
                        reason="saturated",
                    )
                if int((~bad).sum()) < CLIPPED_MIN_LEFT:
                    raise SpectrumError(
                        "the absorbance clipped nearly everywhere; the CD is detector noise",
                        where=where,
                        reason="saturated",
                    )
                wl, cd = wl[~bad], cd[~bad]
                if "saturated" not in flags:
                    flags.append("saturated")
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
    _refuse_misfit(fit, where, allow_misfit, flags, float(exciton_nm), window_nm, (wl, cd))
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
    allow_misfit: bool = False,
) -> dict[str, Any]:
    """Photoluminescence: emission peak intensity PL_I, area PL_A and a PLQY proxy.

    The emission peak is the tallest fitted Gaussian. ``pl_intensity`` is its height (counts),
    ``pl_area`` its area (counts x nm), ``pl_total_area`` the area of all fitted peaks.
    ``plqy_proxy = pl_area / (1 - 10**-abs_300nm)``: emitted light per absorbed fraction at the
    300 nm excitation, comparable between runs of one set-up only (no reference dye). It is
    None, with the flag ``"no_absorbance"``, when ``abs_300nm`` is missing or not > 0.

    Raises:
        SpectrumError: bad arrays, no emission peak (``reason="no_peak"``), or a fit that
            leaves structure in its residual (``reason="misfit"``, unless ``allow_misfit``).
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
        _refuse_misfit(fit, where, allow_misfit, flags)
        raise SpectrumError(
            "no emission peak stands out of the noise", where=where, reason="no_peak"
        )
    main = max(fit.peaks, key=lambda p: p.height)
    reach = 2.0 * main.fwhm_nm
    _refuse_misfit(fit, where, allow_misfit, flags, main.centre_nm, reach, (wl, y))
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
