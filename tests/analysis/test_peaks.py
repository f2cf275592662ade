"""Peak fitting against synthetic spectra with known truth."""

import numpy as np
import pytest

from maosic.analysis.model import PeakModel
from maosic.analysis.peaks import fit_many, fit_peaks
from maosic.analysis.synthetic import make_spectrum

X = np.linspace(300.0, 700.0, 2048)


def gauss(x, c, h, w):
    return h * np.exp(-4.0 * np.log(2.0) * (x - c) ** 2 / w**2)


def test_single_gaussian_exact_recovery_noiseless():
    y = gauss(X, 451.3, 0.8, 22.0) + 0.05 + 0.0001 * (X - 500)
    fit = fit_peaks(X, y, n_peaks=1)
    (p,) = fit.peaks
    assert p.centre_nm == pytest.approx(451.3, abs=1e-4)
    assert p.height == pytest.approx(0.8, rel=1e-4)
    assert p.fwhm_nm == pytest.approx(22.0, rel=1e-4)
    assert p.area == pytest.approx(0.8 * 22.0 * np.sqrt(np.pi / (4 * np.log(2))), rel=1e-4)
    assert fit.r2 > 0.999999


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_to_four_peaks_with_noise_and_baseline(seed):
    rng = np.random.default_rng(seed)
    truth = [(380.0, 0.9, 18.0), (455.0, 0.5, 25.0), (540.0, 1.0, 15.0), (610.0, 0.4, 30.0)]
    y = sum(gauss(X, *t) for t in truth) + 0.1 + 0.3 * (300 / X) ** 4
    y = y + rng.normal(0, 0.02, X.size)
    fit = fit_peaks(X, y, scattering=True)
    assert fit.n_peaks == 4
    for p, (c, h, w) in zip(fit.peaks, truth, strict=True):
        assert abs(p.centre_nm - c) < 5 * p.centre_err + 0.05
        assert p.centre_err < 0.3
        assert p.height == pytest.approx(h, abs=0.03)
        assert p.fwhm_nm == pytest.approx(w, rel=0.05)


def test_overlapping_peaks_resolved():
    rng = np.random.default_rng(7)
    y = gauss(X, 450.0, 1.0, 20.0) + gauss(X, 472.0, 0.6, 20.0) + rng.normal(0, 0.01, X.size)
    fit = fit_peaks(X, y)
    assert fit.n_peaks == 2
    c = [p.centre_nm for p in fit.peaks]
    assert c[0] == pytest.approx(450.0, abs=0.5)
    assert c[1] == pytest.approx(472.0, abs=0.5)


def test_bisignate_cd_couplet():
    rng = np.random.default_rng(3)
    y = gauss(X, 440.0, 0.9, 18.0) - gauss(X, 465.0, 0.7, 18.0) + rng.normal(0, 0.02, X.size)
    fit = fit_peaks(X, y, signed=True)
    assert fit.n_peaks == 2
    lo, hi = fit.peaks
    assert lo.centre_nm == pytest.approx(440.0, abs=1.0) and lo.height > 0
    assert hi.centre_nm == pytest.approx(465.0, abs=1.0) and hi.height < 0
    assert hi.height == pytest.approx(-0.7, abs=0.05)


def test_unsigned_fit_never_returns_negative_heights():
    rng = np.random.default_rng(4)
    y = gauss(X, 500.0, 1.0, 20.0) - gauss(X, 600.0, 0.5, 20.0) + rng.normal(0, 0.01, X.size)
    fit = fit_peaks(X, y)
    assert all(p.height >= 0 for p in fit.peaks)
    assert any(abs(p.centre_nm - 500) < 1 for p in fit.peaks)


@pytest.mark.parametrize("shape", ["lorentzian", "pseudo_voigt"])
def test_other_shapes_recovered(shape):
    model = PeakModel(X, 1, shape, 1, False)
    p = [480.0, 1.0, 20.0] + ([0.5] if shape == "pseudo_voigt" else []) + [0.05, 0.0]
    rng = np.random.default_rng(5)
    y = model.evaluate(np.array(p)) + rng.normal(0, 0.01, X.size)
    fit = fit_peaks(X, y, n_peaks=1, shape=shape)
    (pk,) = fit.peaks
    assert pk.centre_nm == pytest.approx(480.0, abs=0.1)
    assert pk.fwhm_nm == pytest.approx(20.0, rel=0.03)
    if shape == "pseudo_voigt":
        assert pk.eta == pytest.approx(0.5, abs=0.1)


def test_analytic_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    for shape in ("gaussian", "lorentzian", "pseudo_voigt"):
        model = PeakModel(X[::16], 2, shape, 2, True)
        block = [430.0, 0.7, 25.0, 0.4, 520.0, -0.3, 15.0, 0.7]
        if shape != "pseudo_voigt":
            block = [v for i, v in enumerate(block) if i % 4 != 3]
        p = np.array(block + [0.1, -0.2, 0.05, 0.3])
        y = rng.normal(size=model.x.size)
        _, jac = model.residual_jacobian(p, y)
        for j in range(p.size):
            dp = np.zeros_like(p)
            dp[j] = 1e-6 * max(abs(p[j]), 1.0)
            num = model.residual_jacobian(p + dp, y)[0] - model.residual_jacobian(p - dp, y)[0]
            np.testing.assert_allclose(jac[:, j], num / (2 * dp[j]), rtol=1e-5, atol=1e-7)


def test_uncertainties_are_calibrated():
    """The reported centre error should match the scatter over noise realisations."""
    rng = np.random.default_rng(11)
    clean = gauss(X, 500.0, 1.0, 20.0)
    centres, errs = [], []
    for _ in range(60):
        fit = fit_peaks(X, clean + rng.normal(0, 0.05, X.size), n_peaks=1)
        centres.append(fit.peaks[0].centre_nm)
        errs.append(fit.peaks[0].centre_err)
    assert np.std(centres) == pytest.approx(np.mean(errs), rel=0.3)


def test_bic_and_quality_figures():
    rng = np.random.default_rng(2)
    y = gauss(X, 500.0, 1.0, 20.0) + rng.normal(0, 0.05, X.size)
    one = fit_peaks(X, y, n_peaks=1)
    two = fit_peaks(X, y, n_peaks=2)
    auto = fit_peaks(X, y)
    assert auto.n_peaks == 1
    assert one.bic < two.bic  # the extra peak is not worth its parameters
    assert one.reduced_chi2 == pytest.approx(1.0, abs=0.15)
    assert one.noise_sigma == pytest.approx(0.05, rel=0.1)
    assert one.aic < one.bic


def test_random_synthetic_spectra_recover_truth():
    rng = np.random.default_rng(123)
    right = 0
    for _ in range(20):
        spec = make_spectrum(rng)
        fit = fit_peaks(
            spec.wavelength_nm, spec.values, shape="pseudo_voigt", signed=True, scattering=True
        )
        right += fit.n_peaks == spec.n_peaks
        if fit.n_peaks == spec.n_peaks:
            for p, t in zip(fit.peaks, spec.peaks, strict=True):
                assert abs(p.centre_nm - t["centre_nm"]) < max(6 * p.centre_err, 0.5)
    assert right >= 17


def test_fit_many_shared_grid_and_list():
    rng = np.random.default_rng(9)
    ys = np.array([gauss(X, c, 1.0, 20.0) + rng.normal(0, 0.02, X.size) for c in (420, 500, 580)])
    fits = fit_many(X, ys)
    assert [round(f.peaks[0].centre_nm) for f in fits] == [420, 500, 580]
    fits2 = fit_many([X, X], [ys[0], ys[1]])
    assert [round(f.peaks[0].centre_nm) for f in fits2] == [420, 500]


def test_to_dict_is_json_serialisable():
    import json

    y = gauss(X, 500.0, 1.0, 20.0)
    d = fit_peaks(X, y + 0.001 * np.sin(X), n_peaks=1).to_dict()
    text = json.dumps(d)
    assert '"centre_nm"' in text and d["n_peaks"] == 1


def test_fixed_k_returns_exactly_k_peaks():
    rng = np.random.default_rng(21)
    y = gauss(X, 430.0, 1.0, 20.0) + gauss(X, 560.0, 0.7, 25.0) + rng.normal(0, 0.01, X.size)
    assert fit_peaks(X, y, n_peaks=1).n_peaks == 1
    three = fit_peaks(X, y, n_peaks=3)
    assert three.n_peaks == 3
    assert fit_peaks(X, y).n_peaks == 2
    # The forced third peak cannot improve the fit much: BIC prefers two.
    assert fit_peaks(X, y, n_peaks=2).bic < three.bic
