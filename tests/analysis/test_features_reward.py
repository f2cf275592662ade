"""Features and rewards on spectra shaped like the simulated lab's."""

import json

import numpy as np
import pytest

from maosic.analysis.errors import SpectrumError
from maosic.analysis.features import absorption_features, cd_features, pl_features
from maosic.analysis.reward import METRICS, compute_reward

WL = np.linspace(300.0, 700.0, 401)


def gauss(c, h, s):
    return h * np.exp(-0.5 * ((WL - c) / s) ** 2)


def lab_spectra(seed=0, cd_amp=0.9, handedness=1.0, exciton=450.0):
    rng = np.random.default_rng(seed)
    absb = gauss(exciton, 0.8, 8.0) + 0.3 * (300.0 / WL) ** 4 + rng.normal(0, 0.003, WL.size)
    cd = handedness * (gauss(exciton - 10, cd_amp, 9.0) - gauss(exciton + 12, cd_amp, 9.0))
    cd = cd + rng.normal(0, 0.02, WL.size)
    pl = gauss(455, 1000, 7) + gauss(380, 100, 8) + gauss(600, 80, 10)
    pl = pl + rng.normal(0, 5, WL.size)
    return {
        "absorbance": {"wavelength_nm": WL.tolist(), "absorbance": absb.tolist()},
        "cd": {"wavelength_nm": WL.tolist(), "cd_mdeg": cd.tolist(), "absorbance": absb.tolist()},
        "pl": {"wavelength_nm": WL.tolist(), "intensity": pl.tolist(), "abs_300nm": 0.5},
    }


def true_cd_at(exciton, amp, hand=1.0):
    x = exciton
    return hand * (amp * np.exp(-0.5 * (10 / 9) ** 2) - amp * np.exp(-0.5 * (12 / 9) ** 2)) + 0 * x


def test_absorption_features_find_exciton_over_scattering():
    sp = lab_spectra()["absorbance"]
    f = absorption_features(sp["wavelength_nm"], sp["absorbance"])
    assert f["exciton_nm"] == pytest.approx(450.0, abs=0.2)
    assert f["exciton_height"] == pytest.approx(0.8, abs=0.02)
    assert f["exciton_fwhm_nm"] == pytest.approx(8.0 * 2.3548, rel=0.03)
    expected_total = 0.8 + 0.3 * (300 / 450) ** 4
    assert f["exciton_absorbance"] == pytest.approx(expected_total, abs=0.01)
    assert f["abs_300nm"] == pytest.approx(0.3, abs=0.02)
    assert f["flags"] == []


@pytest.mark.parametrize("hand", [1.0, -1.0])
def test_cd_at_exciton_signed(hand):
    sp = lab_spectra(handedness=hand)["cd"]
    f = cd_features(sp["wavelength_nm"], sp["cd_mdeg"], 450.0, window_nm=20.0)
    truth = true_cd_at(450.0, 0.9, hand)
    assert f["cd_at_exciton_mdeg"] == pytest.approx(truth, abs=4 * f["cd_at_exciton_mdeg_err"])
    assert np.sign(f["cd_at_exciton_mdeg"]) == np.sign(truth)
    assert f["max_abs_cd_mdeg"] == pytest.approx(0.9, abs=0.05)
    assert abs(f["max_abs_cd_nm"] - 440.0) < 1.5 or abs(f["max_abs_cd_nm"] - 462.0) < 1.5


def test_cd_flat_gives_zero_with_error_and_flag():
    rng = np.random.default_rng(5)
    f = cd_features(WL, rng.normal(0, 0.02, WL.size), 450.0)
    assert "no_cd_peak" in f["flags"] and "low_signal" in f["flags"]
    assert abs(f["cd_at_exciton_mdeg"]) < 4 * f["cd_at_exciton_mdeg_err"]
    assert 0 < f["cd_at_exciton_mdeg_err"] < 0.02


def test_pl_features():
    sp = lab_spectra()["pl"]
    f = pl_features(sp["wavelength_nm"], sp["intensity"], sp["abs_300nm"])
    assert f["pl_nm"] == pytest.approx(455.0, abs=0.2)
    assert f["pl_intensity"] == pytest.approx(1000.0, rel=0.02)
    area = 1000 * 7 * np.sqrt(2 * np.pi)
    assert f["pl_area"] == pytest.approx(area, rel=0.03)
    assert f["plqy_proxy"] == pytest.approx(area / (1 - 10**-0.5), rel=0.03)
    assert len(f["peaks"]) == 3
    g = pl_features(sp["wavelength_nm"], sp["intensity"], None)
    assert g["plqy_proxy"] is None and "no_absorbance" in g["flags"]


def test_paper_reward_is_abs_cd_at_exciton_and_loss_is_negative():
    r = compute_reward({"metric": "max_abs_cd_at_exciton"}, lab_spectra(handedness=-1.0))
    truth = abs(true_cd_at(450.0, 0.9))
    assert r.value == pytest.approx(truth, abs=4 * r.uncertainty)
    assert r.loss == -r.value
    assert 0 < r.uncertainty < 0.05
    assert r.features["absorbance"]["exciton_nm"] == pytest.approx(450, abs=0.3)
    assert "cd" in r.fits and "absorbance" in r.fits
    json.dumps(r.to_dict())


def test_reward_orders_stronger_cd_higher():
    weak = compute_reward({"metric": "max_abs_cd_at_exciton"}, lab_spectra(cd_amp=0.3))
    strong = compute_reward({"metric": "max_abs_cd_at_exciton"}, lab_spectra(cd_amp=1.0))
    assert strong.value > weak.value + 3 * (strong.uncertainty + weak.uncertainty)


def test_exciton_from_cd_absorbance_when_no_absorbance_spectrum():
    sp = lab_spectra()
    del sp["absorbance"]
    r = compute_reward({"metric": "max_abs_cd_at_exciton"}, sp)
    assert r.features["absorbance"]["exciton_nm"] == pytest.approx(450, abs=0.3)


def test_target_wavelength_and_goal():
    sp = lab_spectra(exciton=460.0)
    r = compute_reward({"metric": "target_wavelength", "wavelength_nm": 450, "goal": -2.0}, sp)
    assert r.value == pytest.approx(-10.0, abs=0.3)
    assert r.reached is False
    r2 = compute_reward({"metric": "target_wavelength", "wavelength_nm": 459.5, "goal": -2.0}, sp)
    assert r2.reached is True
    r3 = compute_reward({"metric": "target_wavelength", "wavelength_nm": 450, "source": "pl"}, sp)
    assert r3.value == pytest.approx(-5.0, abs=0.3)


def test_pl_metrics_and_weighted():
    sp = lab_spectra()
    pli = compute_reward({"metric": "max_pl_intensity"}, sp)
    assert pli.value == pytest.approx(1000, rel=0.02)
    qy = compute_reward({"metric": "max_plqy"}, sp)
    assert qy.value > pli.value
    cd = compute_reward({"metric": "max_abs_cd_at_exciton"}, sp)
    w = compute_reward(
        {
            "metric": "weighted",
            "terms": [
                {"metric": "max_abs_cd_at_exciton", "weight": 2.0},
                {"metric": "max_pl_intensity", "weight": 1.0, "scale": 1000.0},
            ],
        },
        sp,
    )
    assert w.value == pytest.approx(2 * cd.value + pli.value / 1000, rel=1e-9)
    expect_u = np.hypot(2 * cd.uncertainty, pli.uncertainty / 1000)
    assert w.uncertainty == pytest.approx(expect_u, rel=1e-9)
    assert len(w.features["terms"]) == 2


@pytest.mark.parametrize(
    ("target", "spectra_keys", "where"),
    [
        ({"metric": "nope"}, None, "target.metric"),
        ({}, None, "target.metric"),
        ({"metric": "target_wavelength"}, None, "target"),
        ({"metric": "target_wavelength", "wavelength_nm": "x"}, None, "target"),
        ({"metric": "max_pl_intensity"}, ["absorbance", "cd"], "spectra.pl"),
        ({"metric": "max_abs_cd_at_exciton"}, ["absorbance", "pl"], "spectra.cd"),
        ({"metric": "weighted", "terms": []}, None, "target.terms"),
        ({"metric": "weighted", "terms": [{"metric": "weighted"}]}, None, "target.terms[0].metric"),
        (
            {"metric": "weighted", "terms": [{"metric": "max_pl_intensity", "scale": 0}]},
            None,
            "target.terms[0]",
        ),
    ],
)
def test_reward_errors_name_the_culprit(target, spectra_keys, where):
    sp = lab_spectra()
    if spectra_keys is not None:
        sp = {k: sp[k] for k in spectra_keys}
    with pytest.raises(SpectrumError) as info:
        compute_reward(target, sp)
    assert info.value.where == where


def test_plqy_without_abs300_is_an_error():
    sp = lab_spectra()
    sp["pl"]["abs_300nm"] = None
    with pytest.raises(SpectrumError) as info:
        compute_reward({"metric": "max_plqy"}, sp)
    assert info.value.where == "spectra.pl.abs_300nm"


def test_metrics_table_describes_every_metric():
    assert set(METRICS) == {
        "max_abs_cd_at_exciton",
        "max_abs_cd_in_window",
        "target_wavelength",
        "max_pl_intensity",
        "max_plqy",
        "weighted",
    }
    assert all(isinstance(v, str) and v for v in METRICS.values())
