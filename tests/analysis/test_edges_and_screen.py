"""Absorption edges in the model, the linear candidate screen, and the binned final fit."""

import numpy as np
import pytest

from hardware_interface.sim import chemistry as chem
from maosic.analysis import peaks as peaks_mod
from maosic.analysis.errors import SpectrumError
from maosic.analysis.features import absorption_features, cd_features
from maosic.analysis.model import PeakModel
from maosic.analysis.peaks import fit_peaks
from maosic.analysis.reward import compute_reward
from maosic.analysis.threads import single_threaded

X = np.linspace(300.0, 700.0, 401)
X2048 = np.linspace(300.0, 700.0, 2048)


def gauss(x, c, h, w):
    return h * np.exp(-4.0 * np.log(2.0) * (x - c) ** 2 / w**2)


def edge(x, c, h, s):
    return h / (1.0 + np.exp((x - c) / s))


@pytest.mark.parametrize("shape", ["gaussian", "pseudo_voigt"])
def test_edge_jacobian_matches_finite_differences(shape):
    model = PeakModel(X, 2, shape, 1, True, n_edges=2)
    pv = shape == "pseudo_voigt"
    peaks = [450.0, 0.5, 20.0] + ([0.3] if pv else []) + [520.0, 0.2, 30.0] + ([0.6] if pv else [])
    p = np.array(peaks + [400.0, 1.0, 9.0, 480.0, 0.3, 12.0, 0.1, 0.02, 0.3])
    y = np.random.default_rng(0).normal(size=X.size)
    resid, jac = model.residual_jacobian(p, y)
    # The model written out term by term, independently of the vectorised code.
    written = (
        model.evaluate(np.concatenate([p[: model.n_peak_params], [400.0, 0.0, 9.0] * 2, p[-3:]]))
        + edge(X, 400.0, 1.0, 9.0)
        + edge(X, 480.0, 0.3, 12.0)
    )
    np.testing.assert_allclose(resid, written - y, atol=1e-12)
    numeric = np.empty_like(jac)
    for i in range(p.size):
        d = np.zeros_like(p)
        d[i] = 1e-6 * max(1.0, abs(p[i]))
        numeric[:, i] = (model.evaluate(p + d) - model.evaluate(p - d)) / (2 * d[i])
    np.testing.assert_allclose(jac, numeric, atol=1e-7)


def test_exciton_on_a_continuum_edge_is_one_peak_and_one_edge():
    rng = np.random.default_rng(3)
    y = (
        gauss(X, 452.0, 0.6, 18.8)
        + edge(X, 407.0, 1.2, 10.0)
        + 0.1 * (300.0 / X) ** 4
        + 0.01
        + rng.normal(0, 0.003, X.size)
    )
    fit = fit_peaks(X, y, shape="gaussian", scattering=True, edges=1)
    assert fit.n_peaks == 1
    (p,) = fit.peaks
    assert p.centre_nm == pytest.approx(452.0, abs=5 * p.centre_err + 0.05)
    assert p.height == pytest.approx(0.6, rel=0.03)
    assert p.fwhm_nm == pytest.approx(18.8, rel=0.03)
    (e,) = fit.edges
    assert e.centre_nm == pytest.approx(407.0, abs=1.0)
    assert e.height == pytest.approx(1.2, rel=0.05)
    assert fit.reduced_chi2 < 1.3
    # The stored dict carries the edge, and the fit redraws the data.
    assert fit.to_dict()["edges"][0]["width_nm"] == pytest.approx(10.0, rel=0.1)
    assert np.max(np.abs(fit.evaluate(X) - y)) < 6 * 0.003


@pytest.mark.parametrize("edges", [1, 2])
def test_an_edge_the_data_do_not_hold_is_removed(edges):
    rng = np.random.default_rng(5)
    y = gauss(X, 452.0, 0.6, 18.8) + 0.05 + 0.02 * (X - 500.0) / 200.0
    y += rng.normal(0, 0.003, X.size)
    plain = fit_peaks(X, y, shape="gaussian")
    fit = fit_peaks(X, y, shape="gaussian", edges=edges)
    assert fit.edges == []
    assert fit.n_peaks == 1 and fit.peaks[0].centre_nm == pytest.approx(452.0, abs=0.1)
    assert fit.bic == pytest.approx(plain.bic)
    # Parameters, start and covariance all have the layout of a fit without edges.
    assert len(fit.params) == len(fit.start_params) == fit.covariance.shape[0] == 5
    np.testing.assert_allclose(fit.evaluate(X), plain.evaluate(X), atol=1e-6)


def test_of_two_edges_the_one_the_data_hold_is_kept():
    rng = np.random.default_rng(6)
    y = gauss(X, 452.0, 0.6, 18.8) + edge(X, 407.0, 1.2, 10.0) + 0.01
    y += rng.normal(0, 0.003, X.size)
    fit = fit_peaks(X, y, shape="gaussian", edges=2)
    (e,) = fit.edges
    assert e.centre_nm == pytest.approx(407.0, abs=1.0)
    assert e.height == pytest.approx(1.2, rel=0.05)
    assert fit.n_peaks == 1


def test_fit_many_passes_edges_on():
    rng = np.random.default_rng(4)
    ys = [
        gauss(X, c, 0.6, 18.0) + edge(X, c - 45.0, 1.0, 10.0) + 0.01 + rng.normal(0, 0.003, X.size)
        for c in (440.0, 470.0)
    ]
    fits = peaks_mod.fit_many(X, ys, edges=1, on_error="return")
    for fit, c in zip(fits, (440.0, 470.0), strict=True):
        assert isinstance(fit, peaks_mod.PeakFit)
        assert fit.n_peaks == 1 and len(fit.edges) == 1
        assert fit.peaks[0].centre_nm == pytest.approx(c, abs=0.5)
        assert fit.edges[0].centre_nm == pytest.approx(c - 45.0, abs=1.5)
    with pytest.raises(SpectrumError, match="unsigned"):
        peaks_mod.fit_many(X, ys, signed=True, edges=1)


def test_without_an_edge_a_continuum_step_is_not_passed_off_as_a_peak():
    rng = np.random.default_rng(3)
    y = gauss(X, 452.0, 0.6, 18.8) + edge(X, 407.0, 1.2, 10.0) + rng.normal(0, 0.003, X.size)
    plain = fit_peaks(X, y, shape="gaussian")
    with_edge = fit_peaks(X, y, shape="gaussian", edges=1)
    # Without an edge term the step is either left in the residual (a misfit) or imitated by
    # a broad peak centred at the window's end; both say so.
    assert "misfit" in plain.flags or "at_range_edge" in plain.flags
    assert with_edge.reduced_chi2 < 2.0 and "misfit" not in with_edge.flags
    assert with_edge.n_peaks == 1 and "at_range_edge" not in with_edge.flags
    assert with_edge.bic < plain.bic


@pytest.mark.parametrize(("kwargs", "message"), [({"edges": 3}, "0..2"), ({"edges": -1}, "0..2")])
def test_edge_count_is_checked(kwargs, message):
    with pytest.raises(SpectrumError, match=message) as info:
        fit_peaks(X, gauss(X, 450, 1, 20), **kwargs)
    assert info.value.where == "edges"


def test_edges_need_an_unsigned_fit():
    with pytest.raises(SpectrumError, match="unsigned") as info:
        fit_peaks(X, gauss(X, 450, 1, 20), signed=True, edges=1)
    assert info.value.where == "edges"


def test_simulated_absorbance_exciton_and_edge():
    for seed, (T, C) in enumerate([(104.0, 0.75), (131.0, 0.87), (144.0, 0.32)]):
        s = chem.cspbbr3_spectra(T, C, np.random.default_rng(seed))
        f = absorption_features(s["wavelength_nm"], s["absorbance"])
        assert f["exciton_nm"] == pytest.approx(s["exciton_nm"], abs=0.5)
        # The simulator's continuum sets in 45 nm to the blue of the exciton.
        (e,) = f["fit"]["edges"]
        assert e["centre_nm"] == pytest.approx(s["exciton_nm"] - 45.0, abs=3.0)


def test_screen_drops_valleys_and_keeps_peaks():
    # Two positive peaks: the filter also answers the valley between them as a negative peak.
    rng = np.random.default_rng(1)
    y = gauss(X, 440.0, 1.0, 25.0) + gauss(X, 520.0, 1.0, 25.0) + rng.normal(0, 0.01, X.size)
    fitter = peaks_mod._Fitter(X, y, "gaussian", 1, False, True, 5.0, 100.0, 200)
    rows = np.array(
        [
            [440.0, 1.0, 25.0, 0.3],
            [520.0, 1.0, 25.0, 0.3],
            [480.0, -1.0, 40.0, 0.3],  # the valley, as the filter reports it
        ]
    )
    kept = peaks_mod._screen(fitter, rows, 0.01, 6)
    assert kept is not None
    assert sorted(kept[:, 0].tolist()) == [440.0, 520.0]


def test_screen_respects_max_peaks():
    rng = np.random.default_rng(2)
    centres = [350.0, 420.0, 490.0, 560.0, 630.0]
    y = sum(gauss(X, c, 1.0, 20.0) for c in centres) + rng.normal(0, 0.01, X.size)
    fitter = peaks_mod._Fitter(X, y, "gaussian", 1, False, False, 5.0, 100.0, 200)
    rows = np.array([[c, 1.0, 20.0, 0.3] for c in centres])
    assert peaks_mod._screen(fitter, rows, 0.01, 5).shape[0] == 5
    assert peaks_mod._screen(fitter, rows, 0.01, 3).shape[0] == 3


def test_noisy_long_spectrum_final_fit_is_binned_but_reports_the_data():
    rng = np.random.default_rng(0)
    y = gauss(X2048, 450.0, 1.0, 30.0) + gauss(X2048, 560.0, 0.6, 25.0)
    y = y + rng.normal(0, 0.05, X2048.size)
    fitter = peaks_mod._Fitter(X2048, y, "gaussian", 1, False, False, 5.0, 100.0, 200)
    trial = fitter.fit(fitter.linear_start(np.array([[450, 1, 30, 0], [560, 1, 25, 0]], float)))
    binned, _ = peaks_mod._final_fitter(fitter, 0.05, trial)
    assert binned.n < fitter.n  # SNR 20 and 30 nm peaks: bins of a few samples are harmless
    fit = fit_peaks(X2048, y)
    assert fit.n_points == X2048.size
    residual = y - fit.evaluate(X2048)
    assert fit.rmse == pytest.approx(float(np.sqrt(np.mean(residual**2))), rel=1e-9)
    assert [p.centre_nm for p in fit.peaks] == pytest.approx([450.0, 560.0], abs=0.3)


def test_noiseless_spectrum_final_fit_is_not_binned():
    y = gauss(X2048, 450.0, 1.0, 30.0)
    fitter = peaks_mod._Fitter(X2048, y, "gaussian", 1, False, False, 5.0, 100.0, 200)
    trial = fitter.fit(fitter.linear_start(np.array([[450.0, 1.0, 30.0, 0.0]])))
    final, _ = peaks_mod._final_fitter(fitter, 1e-12, trial)
    assert final is fitter


def test_cd_where_the_absorbance_clipped_is_left_out():
    s = chem.cspbbr3_spectra(127.5, 1.12, np.random.default_rng(4))
    assert s["saturated"]
    exc = absorption_features(s["wavelength_nm"], s["absorbance"])["exciton_nm"]
    with_abs = cd_features(s["wavelength_nm"], s["cd_mdeg"], exc, absorbance=s["absorbance"])
    assert "saturated" in with_abs["flags"]
    clipped = s["absorbance"] == s["absorbance"].max()
    first_kept = with_abs["fit"]["wavelength_range_nm"][0]
    assert first_kept > s["wavelength_nm"][clipped].max()
    truth = abs(chem.cspbbr3_cd_truth(127.5, 1.12))
    assert with_abs["max_abs_cd_mdeg"] == pytest.approx(truth, rel=0.15)


def test_reward_passes_the_cd_absorbance_on():
    s = chem.cspbbr3_spectra(127.5, 1.12, np.random.default_rng(4))
    cd = {k: s[k].tolist() for k in ("wavelength_nm", "cd_mdeg", "absorbance")}
    r = compute_reward({"metric": "max_abs_cd_at_exciton"}, {"cd": cd})
    span = r.fits["cd"]["wavelength_range_nm"]
    assert span[0] > float(
        np.asarray(s["wavelength_nm"])[s["absorbance"] == s["absorbance"].max()].max()
    )


def test_single_thread_limit_scans_the_blas_libraries_once():
    from maosic.analysis import threads

    @single_threaded()
    def blas_threads() -> list[int]:
        return [
            lib["num_threads"] for lib in threads._controller.info() if lib["user_api"] == "blas"
        ]

    assert set(blas_threads()) == {1}
    first = threads._controller
    blas_threads()
    assert threads._controller is first  # cached: rescanning costs more than a small fit
