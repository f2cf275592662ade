"""The speed-ups of the fitter's inner loop keep its numbers: model, Jacobian layout, stops."""

import numpy as np
import pytest

from maosic.analysis import peaks as peaks_mod
from maosic.analysis.model import PeakModel
from maosic.analysis.solver import levenberg_marquardt

X = np.linspace(300.0, 700.0, 401)


def _params(shape: str, k: int, rng: np.random.Generator) -> tuple[PeakModel, np.ndarray]:
    model = PeakModel(X, k, shape, 1, True)
    p = np.zeros(model.n_params)
    blk = p[: model.n_peak_params].reshape(k, model.stride)
    blk[:, 0] = np.linspace(380.0, 620.0, k)
    blk[:, 1] = rng.normal(size=k)
    blk[:, 2] = rng.uniform(10.0, 40.0, size=k)
    if model.stride == 4:
        blk[:, 3] = rng.uniform(0.0, 1.0, size=k)
    p[model.n_peak_params :] = rng.normal(size=model.n_params - model.n_peak_params)
    return model, p


def _reference(shape: str, x: np.ndarray, p: np.ndarray, model: PeakModel) -> np.ndarray:
    """The model written out peak by peak, independently of PeakModel's vectorised code."""
    out = model.basis @ p[model.n_peak_params :]
    for row in p[: model.n_peak_params].reshape(model.n_peaks, model.stride):
        c, h, w = row[:3]
        gau = np.exp(-4.0 * np.log(2.0) * (x - c) ** 2 / w**2)
        lor = 1.0 / (1.0 + 4.0 * (x - c) ** 2 / w**2)
        prof = {"gaussian": gau, "lorentzian": lor}.get(shape)
        if prof is None:
            prof = (1.0 - row[3]) * gau + row[3] * lor
        out = out + h * prof
    return out


@pytest.mark.parametrize("shape", ["gaussian", "lorentzian", "pseudo_voigt"])
def test_residual_and_profiles_match_the_written_out_model(shape):
    rng = np.random.default_rng(3)
    model, p = _params(shape, 4, rng)
    y = rng.normal(size=X.size)
    resid, jac = model.residual_jacobian(p, y)
    expected = _reference(shape, X, p, model)
    np.testing.assert_allclose(resid, expected - y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.evaluate(p), expected, rtol=1e-12, atol=1e-12)
    # The height columns of the Jacobian are the unit-height profiles.
    prof = model.profiles(p)
    assert prof.shape == (X.size, 4)
    np.testing.assert_allclose(jac[:, 1 : model.n_peak_params : model.stride], prof, atol=1e-14)
    np.testing.assert_allclose(jac[:, model.n_peak_params :], model.basis)


def test_step_sigma_stop_ends_a_crawl_without_moving_the_answer():
    rng = np.random.default_rng(5)
    truth = np.array([450.0, 1.0, 20.0, 520.0, 0.6, 30.0, 0.05, 0.01, 0.1])
    model = PeakModel(X, 2, "gaussian", 1, True)
    sigma = 0.01
    y = model.evaluate(truth) + rng.normal(0.0, sigma, X.size)
    start = truth * np.array([1.01, 0.8, 1.2, 0.99, 1.3, 0.8, 1.0, 1.0, 1.0])
    lo = np.array([300, 0, 5, 300, 0, 5, -np.inf, -np.inf, -np.inf], dtype=float)
    hi = np.array([700, 10, 100, 700, 10, 100, np.inf, np.inf, np.inf], dtype=float)

    def fun(p):
        return model.residual_jacobian(p, y)

    full = levenberg_marquardt(fun, start, lo, hi, max_iter=500, rtol=1e-15, xtol=0.0)
    quick = levenberg_marquardt(
        fun,
        start,
        lo,
        hi,
        max_iter=500,
        rtol=1e-15,
        xtol=0.0,
        noise_var=sigma**2,
        step_sigmas=0.01,
    )
    assert quick.converged
    assert quick.n_iter < full.n_iter
    # Both end at the same least-squares answer, well inside its one-sigma uncertainty.
    cov = np.linalg.inv(full.jacobian.T @ full.jacobian) * sigma**2
    err = np.sqrt(np.diag(cov))
    assert np.all(np.abs(quick.x - full.x) < 0.1 * err)


def test_short_spectra_are_selected_with_the_iteration_cap():
    x = X
    y = np.exp(-4.0 * np.log(2.0) * (x - 450.0) ** 2 / 20.0**2)
    fitter = peaks_mod._Fitter(x, y, "gaussian", 1, False, False, 5.0, 100.0, 200)
    coarse, sigma = peaks_mod._binned(fitter, 0.01)
    # 401 points are too few to bin, but selection still runs with the selection cap and
    # leaves the final fitter's budget alone.
    assert coarse is not fitter
    assert coarse.n == fitter.n and sigma == 0.01
    assert coarse.max_iter == peaks_mod.SELECT_MAX_ITER
    assert fitter.max_iter == 200


def test_models_are_reused_per_peak_count():
    fitter = peaks_mod._Fitter(X, np.zeros_like(X), "gaussian", 1, True, False, 5.0, 100.0, 200)
    assert fitter.model(2) is fitter.model(2)
    assert fitter.model(2) is not fitter.model(3)
    assert fitter.model(3).n_peaks == 3


@pytest.mark.parametrize("shape", ["gaussian", "pseudo_voigt"])
def test_residual_then_jacobian_never_reuses_a_stale_point(shape):
    rng = np.random.default_rng(8)
    model, p1 = _params(shape, 3, rng)
    p2 = p1.copy()
    p2[0] += 0.5
    y1 = rng.normal(size=X.size)
    y2 = y1 + 1.0
    fresh_model = PeakModel(X, 3, shape, 1, True)
    want_r, want_j = fresh_model.residual_jacobian(p2, y1)
    model.residual(p1, y1)  # a trial at p1, then the Jacobian is asked at another point
    got_r, got_j = model.residual_jacobian(p2, y1)
    np.testing.assert_array_equal(got_r, want_r)
    np.testing.assert_array_equal(got_j, want_j)
    model.residual(p2, y1)  # same point, other data
    got_r, _ = model.residual_jacobian(p2, y2)
    np.testing.assert_allclose(got_r, want_r - 1.0, atol=1e-12)
    # Same point and data: the kept intermediates give the same numbers as a fresh call.
    r_only = model.residual(p2, y1)
    got_r, got_j = model.residual_jacobian(p2, y1)
    np.testing.assert_array_equal(got_r, r_only)
    np.testing.assert_array_equal(got_j, want_j)


def test_solver_with_residual_only_trials_takes_the_same_path():
    rng = np.random.default_rng(11)
    model, truth = _params("pseudo_voigt", 3, rng)
    y = model.evaluate(truth) + rng.normal(0.0, 0.02, X.size)
    start = truth.copy()
    start[0 : model.n_peak_params : 4] += 2.0
    start[2 : model.n_peak_params : 4] *= 1.2
    lo = np.full(truth.size, -np.inf)
    hi = np.full(truth.size, np.inf)
    lo[2 : model.n_peak_params : 4] = 5.0
    lo[3 : model.n_peak_params : 4], hi[3 : model.n_peak_params : 4] = 0.0, 1.0

    def fun(p):
        return model.residual_jacobian(p, y)

    plain = levenberg_marquardt(fun, start, lo, hi, rtol=1e-12)
    lazy = levenberg_marquardt(
        fun, start, lo, hi, rtol=1e-12, residual=lambda p: model.residual(p, y)
    )
    assert lazy.n_iter == plain.n_iter
    np.testing.assert_allclose(lazy.x, plain.x, rtol=0, atol=1e-9)
    assert lazy.cost == pytest.approx(plain.cost, rel=1e-12)
