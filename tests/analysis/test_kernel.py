"""The compiled kernels (kernel.py) against the readable numpy reference they replace."""

from __future__ import annotations

import numpy as np
import pytest

from maosic.analysis import kernel
from maosic.analysis.guesses import FWHM_PER_SIGMA, find_candidates
from maosic.analysis.model import PeakModel
from maosic.analysis.solver import levenberg_marquardt
from maosic.analysis.validate import noise_sigma

SHAPES = ("gaussian", "lorentzian", "pseudo_voigt")


def _problem(shape: str, n_edges: int, seed: int) -> tuple[PeakModel, np.ndarray, np.ndarray]:
    """A 3-peak spectrum on 300 points with noise, and a start 3-5 nm off in every centre."""
    x = np.linspace(300.0, 700.0, 300)
    model = PeakModel(x, 3, shape, 1, True, n_edges=n_edges)
    p = np.zeros(model.n_params)
    pk = p[: model.n_peak_params].reshape(3, model.stride)
    pk[:, 0] = [420.0, 455.0, 580.0]
    pk[:, 1] = [1.0, 0.6, -0.4]
    pk[:, 2] = [25.0, 30.0, 40.0]
    if model.stride == 4:
        pk[:, 3] = [0.2, 0.5, 0.8]
    if n_edges:
        p[model.n_peak_params : model.base_start] = [360.0, 0.8, 9.0]
    p[model.base_start :] = [0.05, -0.02, 0.1]
    rng = np.random.default_rng(seed)
    y = model.evaluate(p) + rng.normal(0.0, 0.01, x.size)
    start = p.copy()
    sp = start[: model.n_peak_params].reshape(3, model.stride)
    sp[:, 0] += [4.0, -3.0, 5.0]
    sp[:, 2] *= 1.15
    return model, y, start


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_edges", [0, 1])
def test_evaluate_matches_the_numpy_model(shape: str, n_edges: int) -> None:
    model, y, p = _problem(shape, n_edges, 0)
    want_r, want_j = model.residual_jacobian(p, y)
    r = np.empty_like(y)
    jt = np.empty((model.n_params, y.size))
    code = kernel.SHAPE_CODES[shape]
    kernel.evaluate(model.x, y, model.basis_t, p, code, 3, n_edges, r, jt, True)
    np.testing.assert_allclose(r, want_r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(jt.T, want_j, rtol=0, atol=1e-12)
    # Residual only: the Jacobian buffer is left alone.
    jt[:] = 7.0
    kernel.evaluate(model.x, y, model.basis_t, p, code, 3, n_edges, r, jt, False)
    np.testing.assert_allclose(r, want_r, rtol=0, atol=1e-12)
    assert (jt == 7.0).all()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reuse", [False, True])
def test_fit_takes_the_same_steps_as_the_numpy_solver(shape: str, reuse: bool) -> None:
    model, y, start = _problem(shape, 1, 1)
    lo = np.full(model.n_params, -np.inf)
    hi = np.full(model.n_params, np.inf)
    s = model.stride
    lo[2 : model.n_peak_params : s], hi[2 : model.n_peak_params : s] = 5.0, 100.0
    # A tight upper bound on one width pins it there: the active-set path runs too.
    hi[2] = 22.0
    if s == 4:
        lo[3 : model.n_peak_params : s], hi[3 : model.n_peak_params : s] = 0.0, 1.0
    opts = dict(rtol=1e-9, atol=0.0, noise_var=1e-4, step_sigmas=0.2)
    ref = levenberg_marquardt(
        lambda p: model.residual_jacobian(p, y),
        start,
        lo,
        hi,
        residual=lambda p: model.residual(p, y),
        reuse_jacobian=reuse,
        **opts,
    )
    params, resid, jt, cost, n_iter, converged = kernel.fit(
        model.x, y, model.basis_t, start.copy(), lo, hi, kernel.SHAPE_CODES[shape], 3, 1,
        200, 1e-9, 0.0, 1e-8, 1e-3, 1e-4, 0.2, reuse,
    )  # fmt: skip
    assert n_iter == ref.n_iter and converged == ref.converged
    assert params[2] == pytest.approx(22.0)  # held on its bound
    np.testing.assert_allclose(params, ref.x, rtol=1e-9, atol=1e-9)
    assert cost == pytest.approx(ref.cost, rel=1e-12)
    np.testing.assert_allclose(resid, ref.residual, atol=1e-12)
    np.testing.assert_allclose(jt.T, ref.jacobian, atol=1e-10)


def test_fit_stops_at_max_iter_and_keeps_inside_the_bounds() -> None:
    model, y, start = _problem("gaussian", 0, 2)
    lo = np.full(model.n_params, -np.inf)
    hi = np.full(model.n_params, np.inf)
    lo[1 : model.n_peak_params : 3] = 0.0  # the negative peak's height cannot go below 0
    params, _, _, _, n_iter, converged = kernel.fit(
        model.x, y, model.basis_t, start.copy(), lo, hi, kernel.GAUSSIAN, 3, 0,
        2, 1e-15, 0.0, 0.0, 1e-3, 0.0, 0.0, False,
    )  # fmt: skip
    assert n_iter == 2 and not converged
    assert (params >= lo).all()
    assert params[7] == 0.0


def _reference_peaks(
    score: np.ndarray, z: np.ndarray, sigmas: np.ndarray, wl: np.ndarray, step: float, z_min: float
) -> list[tuple[float, float, float, float]]:
    """The scale-space maxima and suppression written out in plain Python (the old loop)."""
    n_s, n = score.shape
    found = []
    for s in range(n_s):
        edge = int(np.ceil(1.5 * sigmas[s] / step))
        for p in range(edge, n - edge):
            block = score[max(s - 1, 0) : s + 2, max(p - 1, 0) : p + 2]
            if abs(z[s, p]) >= z_min and score[s, p] >= block.max():
                found.append((-score[s, p], s, p))
    found.sort()
    kept: list[tuple[float, float, float, float]] = []
    for _, s, p in found:
        a = sigmas[s]
        sign = 1.0 if z[s, p] > 0 else -1.0
        if any(
            k[2] == sign and abs(k[0] - wl[p]) < 0.5 * (k[1] / FWHM_PER_SIGMA + a) for k in kept
        ):
            continue
        centre = wl[p]
        if 0 < p < n - 1:
            y0, y1, y2 = np.abs(z[s, p - 1 : p + 2])
            den = y0 - 2 * y1 + y2
            if den < 0:
                centre += min(max(0.5 * (y0 - y2) / den, -0.5), 0.5) * step
        if 0 < s < n_s - 1:
            y0, y1, y2 = score[s - 1 : s + 2, p]
            den = y0 - 2 * y1 + y2
            if den < 0:
                a *= (sigmas[1] / sigmas[0]) ** min(max(0.5 * (y0 - y2) / den, -0.5), 0.5)
        kept.append((centre, a * FWHM_PER_SIGMA, sign, abs(z[s, p])))
    return kept


@pytest.mark.parametrize("seed", range(4))
def test_scale_space_peaks_match_the_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    wl = np.linspace(300.0, 700.0, 400)
    sigmas = np.geomspace(2.0, 40.0, 6)
    z = rng.normal(0.0, 3.0, (6, 400)).cumsum(axis=1) / 4.0  # smooth-ish, many maxima
    score = np.abs(z) / sigmas[:, None]
    got = kernel.scale_space_peaks(score, z, sigmas, wl, 1.0025, 2.0, 0)
    want = _reference_peaks(score, z, sigmas, wl, 1.0025, 2.0)
    assert len(want) > 3
    np.testing.assert_allclose(np.column_stack(got), np.array(want), rtol=1e-12)
    limited = kernel.scale_space_peaks(score, z, sigmas, wl, 1.0025, 2.0, 2)
    np.testing.assert_allclose(np.column_stack(limited), np.array(want[:2]), rtol=1e-12)


def test_find_candidates_one_per_peak_with_sign() -> None:
    x = np.linspace(300.0, 700.0, 2048)
    y = np.exp(-4 * np.log(2) * ((x - 450.0) / 20.0) ** 2) - 0.5 * np.exp(
        -4 * np.log(2) * ((x - 560.0) / 30.0) ** 2
    )
    y += np.random.default_rng(3).normal(0.0, 0.01, x.size)
    cands = find_candidates(x, y, noise_sigma(y), 5.0, 100.0, signed=True)
    assert [c.z for c in cands] == sorted((c.z for c in cands), reverse=True)
    for centre, fwhm, sign in ((450.0, 20.0, 1.0), (560.0, 30.0, -1.0)):
        near = [c for c in cands if abs(c.centre_nm - centre) < 0.5 * fwhm]
        assert len(near) == 1, near  # one candidate per peak
        assert near[0].sign == sign
        assert near[0].centre_nm == pytest.approx(centre, abs=0.5)
        assert near[0].fwhm_nm == pytest.approx(fwhm, rel=0.2)
    # The strongest candidate is the strongest peak (broad-scale answers to the valleys
    # between peaks come after it; the fitter's screen removes those).
    assert cands[0].centre_nm == pytest.approx(450.0, abs=0.5)
    assert [
        c.centre_nm for c in find_candidates(x, y, noise_sigma(y), 5.0, 100.0, True, limit=1)
    ] == [cands[0].centre_nm]
    with pytest.raises(ValueError, match="limit must be >= 1"):
        find_candidates(x, y, noise_sigma(y), 5.0, 100.0, signed=True, limit=0)


def test_warm_up_compiles_every_kernel() -> None:
    assert kernel.warm_up() >= 0.0
    for fn in (kernel.fit, kernel.evaluate, kernel.scale_space_peaks):
        assert fn.signatures, fn
