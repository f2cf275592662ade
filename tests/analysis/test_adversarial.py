"""Spectra a real lab produces where a fit could answer wrong without saying so.

Each case must be either found (every true peak within 1 nm, nothing invented) or flagged;
where the analyzer can do better than flag, the test holds it to finding the peak.
"""

import numpy as np
import pytest

from maosic.analysis.errors import SpectrumError
from maosic.analysis.features import absorption_features, cd_features, pl_features
from maosic.analysis.peaks import fit_peaks
from maosic.analysis.reward import compute_reward
from maosic.analysis.synthetic import make_spectrum

X = np.linspace(300.0, 700.0, 2048)
X401 = np.linspace(300.0, 700.0, 401)
# The flags that say "do not take these peaks at face value"; any one makes a fit non-silent.
WARNINGS = {"misfit", "at_range_edge", "clipped", "no_peaks", "saturated"}
BENCH = {"shape": "pseudo_voigt", "signed": True, "scattering": True}


def gauss(x, c, h, w):
    return h * np.exp(-4.0 * np.log(2.0) * (x - c) ** 2 / w**2)


def found(fit, centres, tol=1.0):
    """True when the fit has exactly the true peaks, each within ``tol`` nm."""
    got = sorted(p.centre_nm for p in fit.peaks)
    return len(got) == len(centres) and all(
        abs(g - c) <= tol for g, c in zip(got, sorted(centres), strict=True)
    )


def assert_found_or_flagged(fit, centres, tol=1.0):
    assert found(fit, centres, tol) or WARNINGS & set(fit.flags), (
        f"silent: peaks {[round(p.centre_nm, 2) for p in fit.peaks]} for truth {centres}, "
        f"flags {fit.flags}, reduced chi2 {fit.reduced_chi2:.2f}"
    )


@pytest.mark.parametrize("options", [{}, BENCH], ids=["plain", "signed_scattering"])
@pytest.mark.parametrize("inset", [2.0, 5.0, 10.0, 15.0])
@pytest.mark.parametrize("end", ["blue", "red"])
def test_peak_near_either_end_is_found_and_flagged(end, inset, options):
    centre = 300.0 + inset if end == "blue" else 700.0 - inset
    rng = np.random.default_rng(int(inset * 10) + (end == "red"))
    y = gauss(X, centre, 1.0, 20.0) + 0.05 + rng.normal(0, 0.05, X.size)  # SNR 20
    fit = fit_peaks(X, y, **options)
    assert found(fit, [centre]), [p.centre_nm for p in fit.peaks]
    # The window cuts the peak: its centre rests on one flank, and the fit says so.
    assert "at_range_edge" in fit.flags and "at_range_edge" in fit.peaks[0].flags
    assert "misfit" not in fit.flags
    given = fit_peaks(X, y, n_peaks=1, **options)
    assert found(given, [centre])
    assert given.peaks[0].height == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("centre", [295.0, 705.0])
def test_peak_centred_just_outside_is_modelled_not_replaced_by_inventions(centre):
    rng = np.random.default_rng(int(centre))
    y = gauss(X, centre, 1.0, 20.0) + 0.05 + rng.normal(0, 0.05, X.size)
    for options in ({}, BENCH):
        fit = fit_peaks(X, y, **options)
        assert fit.n_peaks == 1, [p.centre_nm for p in fit.peaks]
        assert fit.peaks[0].centre_nm == pytest.approx(centre, abs=3.0)
        assert "at_range_edge" in fit.flags and "misfit" not in fit.flags


def test_interior_peaks_are_not_flagged_at_the_edge():
    rng = np.random.default_rng(8)
    y = gauss(X, 340.0, 1.0, 20.0) + gauss(X, 660.0, 0.8, 20.0) + rng.normal(0, 0.05, X.size)
    fit = fit_peaks(X, y)
    assert found(fit, [340.0, 660.0], tol=0.5)
    assert fit.flags == []


@pytest.mark.parametrize("ceiling", [2.0, 2.5, 3.0])
def test_clipped_absorbance_is_fitted_on_its_flanks(ceiling):
    rng = np.random.default_rng(int(ceiling * 10))
    clean = gauss(X401, 480.0, 4.0, 30.0) + 0.05
    y = np.minimum(clean + rng.normal(0, 0.01, X401.size), ceiling)
    assert np.sum(y == ceiling) >= 10
    fit = fit_peaks(X401, y)
    assert "clipped" in fit.flags
    assert found(fit, [480.0])
    assert fit.peaks[0].height == pytest.approx(4.0, rel=0.1)
    # The clipped points are out of the fit, so its quality refers to the rest only.
    assert fit.n_points == int(np.sum(y < ceiling))
    assert "misfit" not in fit.flags
    feats = absorption_features(X401, y)
    assert abs(feats["exciton_nm"] - 480.0) <= 2.0
    assert {"saturated", "clipped"} <= set(feats["flags"])


def test_clipping_at_the_negative_limit_of_a_signed_spectrum():
    rng = np.random.default_rng(3)
    y = gauss(X401, 440.0, 1.0, 25.0) - gauss(X401, 500.0, 3.0, 25.0)
    y = np.maximum(y + rng.normal(0, 0.02, X401.size), -2.0)
    fit = fit_peaks(X401, y, signed=True)
    assert "clipped" in fit.flags
    assert found(fit, [440.0, 500.0])


def test_a_spectrum_nearly_all_clipped_is_refused():
    y = np.minimum(gauss(X401, 480.0, 40.0, 150.0), 2.0) + 0.01
    assert np.sum(y == y.max()) > 0.75 * y.size
    with pytest.raises(SpectrumError) as info:
        fit_peaks(X401, y)
    assert info.value.reason == "saturated"


def test_noiseless_tails_at_exact_zero_are_not_clipping():
    # Far from a narrow peak exp() underflows to exactly 0.0: a long run at the minimum.
    y = gauss(X401, 450.0, 1.0, 8.0)
    assert np.sum(y == 0.0) > 100
    for signed in (False, True):
        fit = fit_peaks(X401, y, signed=signed)
        assert "clipped" not in fit.flags
        assert any(abs(p.centre_nm - 450.0) < 0.01 and p.height > 0.99 for p in fit.peaks)


@pytest.mark.parametrize("options", [{}, {"scattering": True}])
def test_negative_peak_in_an_unsigned_fit_is_a_misfit(options):
    rng = np.random.default_rng(4)
    y = 0.5 - gauss(X, 480.0, 1.0, 20.0) + rng.normal(0, 0.05, X.size)
    fit = fit_peaks(X, y, **options)
    assert "misfit" in fit.flags
    assert fit.residual_z >= 6.5 or fit.reduced_chi2 > 1.3
    with pytest.raises(SpectrumError) as info:
        pl_features(X, y, 0.5)
    assert info.value.reason == "misfit" and info.value.where == "pl"
    assert "chi-square" in str(info.value)
    # For inspection the features can still be had, flagged.
    assert "misfit" in pl_features(X, y, 0.5, allow_misfit=True)["flags"]
    # The absorbance model (with a continuum edge and scattering) can bend around a dip with
    # broad peaks; it then says so rather than reporting them quietly.
    try:
        feats = absorption_features(X, y)
    except SpectrumError as exc:
        assert exc.reason == "misfit"
    else:
        assert WARNINGS & set(feats["flags"])
    # Fitted signed, the same spectrum is fine.
    assert found(fit_peaks(X, y, signed=True), [480.0])


def test_reward_refuses_a_misfit_spectrum_and_says_why():
    rng = np.random.default_rng(5)
    absorbance = 0.5 - gauss(X401, 480.0, 0.4, 20.0) + rng.normal(0, 0.003, X401.size)
    cd = gauss(X401, 470.0, 1.0, 15.0) - gauss(X401, 495.0, 1.0, 15.0)
    spectra = {
        "absorbance": {"wavelength_nm": X401.tolist(), "absorbance": absorbance.tolist()},
        "cd": {"wavelength_nm": X401.tolist(), "cd_mdeg": cd.tolist()},
    }
    with pytest.raises(SpectrumError) as info:
        compute_reward({"metric": "max_abs_cd_at_exciton"}, spectra)
    assert info.value.reason == "misfit"
    assert info.value.where == "spectra.absorbance"


def test_too_few_peaks_allowed_is_a_misfit():
    rng = np.random.default_rng(6)
    y = sum(gauss(X, c, 1.0, 20.0) for c in (380.0, 480.0, 580.0)) + rng.normal(0, 0.05, X.size)
    fit = fit_peaks(X, y, max_peaks=2)
    assert fit.n_peaks == 2 and "misfit" in fit.flags
    assert any(abs(fit.residual_nm - c) < 15 for c in (380.0, 480.0, 580.0))
    assert "misfit" not in fit_peaks(X, y).flags


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_noise_is_flagged_no_peaks(seed, signed):
    rng = np.random.default_rng(100 + seed)
    y = 0.1 + rng.normal(0, 0.05, X.size)
    fit = fit_peaks(X, y, signed=signed)
    assert fit.n_peaks == 0 and "no_peaks" in fit.flags and "misfit" not in fit.flags
    if not signed:
        with pytest.raises(SpectrumError) as info:
            absorption_features(X, y)
        assert info.value.reason == "no_peak"


def _given_count_cases(n_peaks, bisignate_share, seeds):
    for seed in seeds:
        spec = make_spectrum(
            np.random.default_rng(seed), n_peaks=n_peaks, bisignate_share=bisignate_share
        )
        yield pytest.param(spec, id=f"{n_peaks}peaks-seed{seed}")


@pytest.mark.parametrize(
    "spec",
    [
        *_given_count_cases(2, 1.0, range(900, 906)),  # Cotton couplets
        *_given_count_cases(4, 0.3, range(910, 916)),
    ],
)
def test_given_count_is_never_worse_than_the_free_choice(spec):
    truth = [p["centre_nm"] for p in spec.peaks]
    free = fit_peaks(spec.wavelength_nm, spec.values, **BENCH)
    given = fit_peaks(spec.wavelength_nm, spec.values, n_peaks=spec.n_peaks, **BENCH)
    assert given.n_peaks == spec.n_peaks and np.isfinite(given.bic)
    if free.n_peaks == spec.n_peaks:
        assert given.bic <= free.bic + 1e-6 * abs(free.bic)
    assert_found_or_flagged(given, truth)


def test_given_count_more_than_the_spectrum_holds_is_never_degenerate():
    rng = np.random.default_rng(7)
    y = gauss(X401, 450.0, 1.0, 20.0) + rng.normal(0, 0.02, X401.size)
    for k in (2, 3, 5):
        try:
            fit = fit_peaks(X401, y, n_peaks=k, signed=True)
        except SpectrumError as exc:
            assert exc.reason == "degenerate"
            continue
        assert fit.n_peaks == k and np.isfinite(fit.bic)
        centres = np.sort([p.centre_nm for p in fit.peaks])
        widths = np.array([p.fwhm_nm for p in sorted(fit.peaks, key=lambda p: p.centre_nm)])
        assert (np.diff(centres) >= 0.25 * np.minimum(widths[1:], widths[:-1])).all()


def test_cd_leaves_out_every_stretch_where_the_absorbance_clipped():
    # A dense sample clips at a UV band (380 nm) away from its exciton (450 nm); where the
    # absorbance clipped, the CD spectrometer returns noise of 1 mdeg instead of signal.
    rng = np.random.default_rng(9)
    absorbance = gauss(X401, 380.0, 3.0, 40.0) + gauss(X401, 450.0, 0.8, 20.0) + 0.05
    absorbance = np.minimum(absorbance + rng.normal(0, 0.002, X401.size), 2.0)
    clipped = absorbance == 2.0
    assert clipped.sum() >= 10 and not clipped[0]  # not a plateau at the UV end
    cd = gauss(X401, 445.0, 1.0, 15.0) - gauss(X401, 465.0, 1.0, 15.0)
    cd = cd + rng.normal(0, 0.02, X401.size)
    cd[clipped] = rng.normal(0, 1.0, int(clipped.sum()))
    feats = cd_features(X401, cd, 450.0, absorbance=absorbance)
    assert "saturated" in feats["flags"] and "misfit" not in feats["flags"]
    assert feats["fit"]["n_points"] <= X401.size - clipped.sum()
    centres = sorted(p["centre_nm"] for p in feats["peaks"])
    assert len(centres) == 2 and np.allclose(centres, [445.0, 465.0], atol=1.0)
    # The exciton inside a clipped stretch cannot be measured.
    with pytest.raises(SpectrumError) as info:
        cd_features(X401, cd, 380.0, absorbance=absorbance)
    assert info.value.reason == "saturated"
    # Without the absorbance the CD fit sees the noise and says so. 70 nm from it the model
    # still explains the data, so the CD at the exciton is read, flagged; read where the
    # noise is, it is refused.
    feats = cd_features(X401, cd, 450.0)
    assert {"misfit", "misfit_elsewhere"} <= set(feats["flags"])
    truth = float(gauss(np.array([450.0]), 445.0, 1.0, 15.0)[0])
    truth -= float(gauss(np.array([450.0]), 465.0, 1.0, 15.0)[0])
    assert abs(feats["cd_at_exciton_mdeg"] - truth) < 0.1, feats["cd_at_exciton_mdeg"]
    with pytest.raises(SpectrumError) as info:
        cd_features(X401, cd, 400.0)
    assert info.value.reason == "misfit"


def test_a_gap_in_the_wavelengths_is_not_binned_across():
    # A caller left 300 samples out of a long spectrum (where another signal clipped): bins of
    # the selection must not join the two sides of the gap.
    rng = np.random.default_rng(10)
    y = gauss(X, 420.0, 1.0, 25.0) + gauss(X, 560.0, 0.7, 30.0) + rng.normal(0, 0.05, X.size)
    keep = np.ones(X.size, dtype=bool)
    keep[700:1000] = False  # 437-495 nm
    fit = fit_peaks(X[keep], y[keep])
    assert found(fit, [420.0, 560.0], tol=0.5)
    assert "misfit" not in fit.flags and fit.n_points == int(keep.sum())


def test_noiseless_data_are_not_called_a_misfit():
    y = gauss(X, 450.0, 1.0, 30.0) + gauss(X, 520.0, 0.5, 20.0) + 0.1
    fit = fit_peaks(X, y)
    assert "misfit" not in fit.flags
    real = [p.centre_nm for p in fit.peaks if p.height > 0.1]
    assert np.allclose(real, [450.0, 520.0], atol=1e-3)
