"""Bad input gives SpectrumError naming what and where, or a flag; never a scipy traceback."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maosic.analysis.errors import REASONS, SpectrumError
from maosic.analysis.features import absorption_features, cd_features, pl_features
from maosic.analysis.peaks import fit_many, fit_peaks

X = np.linspace(300.0, 700.0, 401)
Y = np.exp(-0.5 * ((X - 450.0) / 8.0) ** 2) + np.random.default_rng(0).normal(0, 0.005, X.size)


@pytest.mark.parametrize(
    ("wl", "y", "reason", "where"),
    [
        ([], [], "empty", "spectrum"),
        (X, Y[:-1], "length_mismatch", "spectrum"),
        (X[:5], Y[:5], "empty", "spectrum"),
        (X, np.where(X == 500.0, np.nan, Y), "not_finite", "spectrum.values"),
        (X, np.where(X == 500.0, np.inf, Y), "not_finite", "spectrum.values"),
        (np.where(X == 400.0, np.nan, X), Y, "not_finite", "spectrum.wavelength_nm"),
        (
            np.r_[X[:10], X[9:]],
            np.r_[Y[:10], Y[9:]],
            "duplicate_wavelength",
            "spectrum.wavelength_nm",
        ),
        (np.c_[X, X], np.c_[Y, Y], "not_1d", "spectrum.wavelength_nm"),
        (["a"] * 10, Y[:10], "bad_argument", "spectrum.wavelength_nm"),
    ],
)
def test_bad_arrays_raise_spectrum_error(wl, y, reason, where):
    with pytest.raises(SpectrumError) as info:
        fit_peaks(wl, y)
    assert info.value.reason == reason
    assert info.value.where == where
    assert where in str(info.value)
    assert isinstance(info.value, ValueError)


def test_nan_message_gives_index():
    y = Y.copy()
    y[123] = np.nan
    with pytest.raises(SpectrumError, match="first at index 123"):
        fit_peaks(X, y)


def test_unsorted_wavelengths_are_sorted_and_flagged():
    order = np.random.default_rng(1).permutation(X.size)
    fit = fit_peaks(X[order], Y[order])
    ref = fit_peaks(X, Y)
    assert "unsorted_input" in fit.flags and "unsorted_input" not in ref.flags
    assert fit.peaks[0].centre_nm == pytest.approx(ref.peaks[0].centre_nm, abs=1e-9)


def test_flat_spectrum_has_no_peaks_and_is_flagged():
    fit = fit_peaks(X, np.full(X.size, 0.2))
    assert fit.n_peaks == 0 and "no_peaks" in fit.flags and "flat" in fit.flags
    noisy = fit_peaks(X, 0.2 + np.random.default_rng(2).normal(0, 0.01, X.size))
    assert noisy.n_peaks == 0 and "no_peaks" in noisy.flags
    with pytest.raises(SpectrumError) as info:
        fit_peaks(X, np.full(X.size, 0.2), n_peaks=1)
    assert info.value.reason == "flat"


def test_flat_absorbance_is_an_error_not_a_number():
    flat = 0.2 + np.random.default_rng(3).normal(0, 0.01, X.size)
    with pytest.raises(SpectrumError) as info:
        absorption_features(X, flat)
    assert info.value.reason == "no_peak" and info.value.where == "absorbance"
    with pytest.raises(SpectrumError) as info:
        pl_features(X, flat, 0.5)
    assert info.value.reason == "no_peak"


def test_saturated_absorbance_is_flagged():
    clipped = np.minimum(3.0 * np.exp(-0.5 * ((X - 450.0) / 15.0) ** 2), 2.5)
    clipped = clipped + 0.05
    feats = absorption_features(X, clipped, saturation_limit=4.0)
    assert "saturated" in feats["flags"]
    over = absorption_features(X, 4.2 * Y, saturation_limit=4.0)
    assert "saturated" in over["flags"]
    fine = absorption_features(X, Y, saturation_limit=4.0)
    assert "saturated" not in fine["flags"]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"shape": "triangle"}, "shape"),
        ({"baseline_order": 7}, "baseline_order"),
        ({"n_peaks": -1}, "n_peaks"),
        ({"max_peaks": 0}, "max_peaks"),
        ({"min_fwhm_nm": 50.0, "max_fwhm_nm": 10.0}, "min_fwhm_nm"),
    ],
)
def test_bad_options(kwargs, where):
    with pytest.raises(SpectrumError) as info:
        fit_peaks(X, Y, **kwargs)
    assert info.value.where == where


def test_cd_features_rejects_bad_exciton():
    with pytest.raises(SpectrumError) as info:
        cd_features(X, Y, float("nan"))
    assert info.value.where == "exciton_nm"
    with pytest.raises(SpectrumError, match="outside the CD range"):
        cd_features(X, Y, 800.0)


def test_fit_many_reports_which_spectrum_failed():
    bad = Y.copy()
    bad[3] = np.inf
    with pytest.raises(SpectrumError) as info:
        fit_many(X, [Y, bad])
    assert info.value.where == "spectra[1].values"
    out = fit_many(X, [Y, bad], on_error="return")
    assert out[0].n_peaks == 1 and isinstance(out[1], SpectrumError)


@pytest.mark.filterwarnings("error")
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=60
    ),
    signed=st.booleans(),
)
def test_any_input_gives_a_fit_or_a_spectrum_error(values, signed):
    """Whatever the numbers, the only exception that escapes is SpectrumError."""
    wl = np.linspace(300.0, 700.0, len(values))
    try:
        fit = fit_peaks(wl, values, signed=signed)
    except SpectrumError as exc:
        assert exc.reason in REASONS
        return
    assert np.isfinite(fit.bic) or fit.n_peaks == 0
    for p in fit.peaks:
        assert np.isfinite([p.centre_nm, p.height, p.fwhm_nm]).all()
        assert signed or p.height >= 0
