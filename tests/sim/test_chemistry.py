"""The CsPbBr3 and Cs3Cu2I5 response surfaces against the numbers of issue 5 (items 3, 4)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import maximum_filter
from scipy.optimize import minimize

from hardware_interface.sim import chemistry as ch

T_GRID = np.arange(90.0, 180.0 + 1e-9, 0.5)
C_GRID = np.arange(0.2, 1.2 + 1e-9, 0.01)


@pytest.fixture(scope="module")
def landscape() -> np.ndarray:
    tt, cc = np.meshgrid(T_GRID, C_GRID, indexing="ij")
    return ch.cspbbr3_cd_truth(tt, cc)


def test_global_optimum_near_130C_08_with_1_mdeg(landscape: np.ndarray) -> None:
    i, j = np.unravel_index(np.argmax(landscape), landscape.shape)
    assert abs(T_GRID[i] - 130.0) <= 3.0
    assert abs(C_GRID[j] - 0.8) <= 0.05
    assert landscape[i, j] == pytest.approx(1.0, abs=0.03)


def test_stored_optimum_matches_a_fresh_numerical_search() -> None:
    (t_opt, c_opt), value = ch.CSPBBR3_OPTIMUM
    res = minimize(
        lambda x: -ch.cspbbr3_cd_truth(x[0], x[1]),
        x0=(125.0, 0.7),
        method="Nelder-Mead",
        options={"xatol": 1e-6, "fatol": 1e-12},
    )
    assert res.x[0] == pytest.approx(t_opt, abs=0.05)
    assert res.x[1] == pytest.approx(c_opt, abs=0.002)
    assert -res.fun == pytest.approx(value, abs=1e-3)
    assert ch.cspbbr3_cd_truth(t_opt, c_opt) == pytest.approx(value, abs=1e-3)


def test_local_optimum_near_110C_04_with_04_mdeg(landscape: np.ndarray) -> None:
    peaks = (landscape == maximum_filter(landscape, size=7)) & (landscape > 0.1)
    rows, cols = np.nonzero(peaks)
    found = [(T_GRID[i], C_GRID[j], landscape[i, j]) for i, j in zip(rows, cols, strict=True)]
    assert len(found) == 2, found
    local = [p for p in found if abs(p[0] - 110.0) <= 3.0 and abs(p[1] - 0.4) <= 0.05]
    assert len(local) == 1, found
    assert local[0][2] == pytest.approx(0.4, abs=0.05)
    (t_loc, c_loc), v_loc = ch.CSPBBR3_LOCAL_OPTIMUM
    assert ch.cspbbr3_cd_truth(t_loc, c_loc) == pytest.approx(v_loc, abs=1e-3)


def test_cd_falls_off_above_160C(landscape: np.ndarray) -> None:
    best_per_t = landscape.max(axis=1)
    hot = T_GRID >= 160.0
    assert np.all(np.diff(best_per_t[hot]) < 0.0)
    assert best_per_t[T_GRID == 165.0][0] < 0.1
    assert best_per_t[T_GRID == 150.0][0] > 0.3  # still chiral below the fall-off
    assert ch.cspbbr3_cubic_fraction(170.0) > 0.9 > ch.cspbbr3_cubic_fraction(130.0) + 0.8


def test_cd_roughly_proportional_to_c_at_130C() -> None:
    c = np.linspace(0.2, 0.75, 12)
    cd = ch.cspbbr3_cd_truth(130.0, c)
    slope = float(np.sum(c * cd) / np.sum(c * c))  # a line through the origin
    resid = cd - slope * c
    r2 = 1.0 - np.sum(resid**2) / np.sum((cd - cd.mean()) ** 2)
    assert r2 > 0.98
    assert ch.cspbbr3_cd_truth(130.0, 0.4) / ch.cspbbr3_cd_truth(130.0, 0.2) == pytest.approx(
        2.0, rel=0.1
    )
    # Up to 1.0 mmol/mL it stays within ~5 % of the optimum (issue 22: it used to fall to 0.83);
    # beyond it falls.
    assert ch.cspbbr3_cd_truth(130.0, 1.0) >= 0.95 * ch.CSPBBR3_OPTIMUM[1]
    assert ch.cspbbr3_cd_truth(130.0, 1.2) < 0.8 * ch.cspbbr3_cd_truth(130.0, 1.0)
    # as a whole, 0.2-1.0 mmol/mL is still close to a line through the origin
    c = np.linspace(0.2, 1.0, 17)
    cd = ch.cspbbr3_cd_truth(130.0, c)
    slope = float(np.sum(c * cd) / np.sum(c * c))
    resid = cd - slope * c
    assert 1.0 - np.sum(resid**2) / np.sum((cd - cd.mean()) ** 2) > 0.9


def test_truth_broadcasts_and_returns_float_for_scalars() -> None:
    assert isinstance(ch.cspbbr3_cd_truth(130.0, 0.8), float)
    out = ch.cspbbr3_cd_truth(np.array([110.0, 130.0]), 0.8)
    assert out.shape == (2,)


def test_noisy_cd_scatters_around_the_truth() -> None:
    rng = np.random.default_rng(3)
    draws = np.array([ch.cspbbr3_cd_noisy(130.0, 0.8, rng) for _ in range(2000)])
    assert draws.mean() == pytest.approx(ch.cspbbr3_cd_truth(130.0, 0.8), abs=0.01)
    assert 0.02 < draws.std() < 0.06  # noise floor plus 1 % repeatability plus ripple
    floor = np.array([ch.cspbbr3_cd_noisy(178.0, 0.2, rng) for _ in range(500)])
    assert 0.01 < floor.mean() < 0.06  # a few hundredths of a mdeg of |noise|


def test_noisy_is_deterministic_under_a_seed() -> None:
    a = [ch.cspbbr3_cd_noisy(120.0, 0.6, np.random.default_rng(7)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_spectra_exciton_and_bisignate_cd() -> None:
    rng = np.random.default_rng(0)
    spec = ch.cspbbr3_spectra(130.0, 0.8, rng, handedness=1)
    wl, absorb, cd = spec["wavelength_nm"], spec["absorbance"], spec["cd_mdeg"]
    assert wl[0] == 300.0 and wl[-1] == 700.0 and len(wl) == len(absorb) == len(cd)
    assert spec["exciton_nm"] == pytest.approx(450.0, abs=2.0)
    window = (wl > 420) & (wl < 480)
    peak_wl = wl[window][np.argmax(absorb[window])]
    assert peak_wl == pytest.approx(spec["exciton_nm"], abs=2.0)
    at_ex = int(np.argmin(np.abs(wl - spec["exciton_nm"])))
    assert cd[at_ex] == pytest.approx(1.0, abs=0.1)
    assert cd.min() < -0.3  # the negative lobe of the Cotton couplet
    assert not spec["saturated"]
    clean = ch.cspbbr3_cd_clean(130.0, 0.8, handedness=-1)
    assert clean[at_ex] == pytest.approx(-ch.cspbbr3_cd_truth(130.0, 0.8), abs=1e-9)


def test_exciton_shifts_with_conditions() -> None:
    assert ch.cspbbr3_exciton_nm(150.0, 0.8) > ch.cspbbr3_exciton_nm(110.0, 0.8) + 5.0


def test_handedness_is_random_and_validated() -> None:
    rng = np.random.default_rng(1)
    hands = {ch.cspbbr3_spectra(130.0, 0.8, rng)["handedness"] for _ in range(20)}
    assert hands == {1, -1}
    with pytest.raises(ValueError, match="handedness"):
        ch.cspbbr3_spectra(130.0, 0.8, rng, handedness=2)


def test_absorbance_saturates_the_cd_spectrometer_at_high_c() -> None:
    rng = np.random.default_rng(2)
    assert ch.cspbbr3_spectra(130.0, 1.2, rng)["saturated"]
    assert not ch.cspbbr3_spectra(130.0, 0.6, rng)["saturated"]


def test_absorbance_repeatability_about_one_percent() -> None:
    rng = np.random.default_rng(4)
    peaks = []
    for _ in range(300):
        spec = ch.cspbbr3_spectra(130.0, 0.8, rng)
        peaks.append(spec["absorbance"][150])  # 450 nm
    rel = np.std(peaks) / np.mean(peaks)
    assert 0.005 < rel < 0.02


def test_space_definitions() -> None:
    space = ch.CSPBBR3_SPACE
    assert list(space.names) == ["T", "C"] and space["resolution"] == (0.5, 0.01)
    assert space.as_dict()["lower"] == [90.0, 0.2]
    with pytest.raises(KeyError, match="no field"):
        space["bogus"]
    c5 = ch.CS3CU2I5_SPACE
    assert sum(c5.lower[1:]) == 600.0 and sum(c5.upper[1:]) == 900.0


# --- Cs3Cu2I5 -----------------------------------------------------------------------------------


def test_cs3cu2i5_optimum_is_31_percent_and_rederived() -> None:
    x_opt, v_opt = ch.CS3CU2I5_OPTIMUM
    assert v_opt == pytest.approx(31.0, abs=0.5)
    assert ch.cs3cu2i5_plqy_truth(x_opt) == pytest.approx(v_opt, abs=1e-3)
    assert ch.CS3CU2I5_SPACE.contains(x_opt)
    space = ch.CS3CU2I5_SPACE
    lo, hi = np.array(space.lower), np.array(space.upper)
    rng = np.random.default_rng(0)
    best = -np.inf
    for _ in range(10):
        x0 = lo + (hi - lo) * rng.random(5)
        res = minimize(
            lambda x: -ch.cs3cu2i5_plqy_truth(dict(zip(space.names, x, strict=True))),
            x0,
            method="L-BFGS-B",
            bounds=list(zip(lo, hi, strict=True)),
        )
        best = max(best, -res.fun)
    assert best == pytest.approx(v_opt, abs=0.05)


def test_cs3cu2i5_random_search_reaches_about_17_percent_in_16_tries() -> None:
    space = ch.CS3CU2I5_SPACE
    lo, hi = np.array(space.lower), np.array(space.upper)
    rng = np.random.default_rng(11)
    pts = lo + (hi - lo) * rng.random((3000, 16, 5))
    values = ch.cs3cu2i5_plqy_truth({n: pts[..., i] for i, n in enumerate(space.names)})
    best_of_16 = values.max(axis=1)
    assert 15.0 < float(np.mean(best_of_16)) < 19.0


def test_cs3cu2i5_pl_shape() -> None:
    x = dict(ch.CS3CU2I5_OPTIMUM[0])
    wl = ch.WAVELENGTH_NM
    clean, abs_300 = ch.cs3cu2i5_pl_clean(x)
    assert wl[np.argmax(clean)] == pytest.approx(450.0, abs=2.0)
    assert abs_300 > 0.5
    i380, i600 = int(np.argmin(abs(wl - 380))), int(np.argmin(abs(wl - 600)))
    more_cs = dict(x, q_CsOA=175.0, q_CuI=100.0)
    rel_380 = clean[i380] / clean.max()
    more, _ = ch.cs3cu2i5_pl_clean(more_cs)
    assert more[i380] / more.max() > rel_380 + 0.05  # side peak grows with Cs-oleate
    cold, _ = ch.cs3cu2i5_pl_clean(dict(x, T=120.0))
    warm, _ = ch.cs3cu2i5_pl_clean(dict(x, T=150.0))
    assert cold[i600] / cold.max() > 0.1 > warm[i600] / warm.max()
    # the papers' sign: PLQY rises with temperature over 120-180 °C
    plqy = [ch.cs3cu2i5_plqy_truth(dict(x, T=t)) for t in (120.0, 140.0, 160.0, 180.0)]
    assert plqy == sorted(plqy) and plqy[0] < 0.3 * plqy[-1]


def test_cs3cu2i5_noisy_spectra_and_bad_input() -> None:
    rng = np.random.default_rng(5)
    x = dict(ch.CS3CU2I5_OPTIMUM[0])
    spec = ch.cs3cu2i5_spectra(x, rng)
    assert spec["plqy"] == pytest.approx(31.0, abs=3.0)
    assert spec["pl_area"] > 0 and spec["pl_peak_intensity"] > 0
    assert set(spec) >= {"wavelength_nm", "intensity", "abs_300nm", "plqy"}
    with pytest.raises(KeyError, match="q_ODE"):
        ch.cs3cu2i5_plqy_truth({"T": 140.0, "q_CuI": 1, "q_ZnI2": 1, "q_CsOA": 1})
