"""The analyzer on spectra from the simulated lab's CsPbBr3 chemistry (known truth)."""

import numpy as np
import pytest

from hardware_interface.sim import chemistry as chem
from maosic.analysis.reward import compute_reward


@pytest.mark.parametrize(("T", "C"), [(130.0, 0.8), (110.0, 0.4), (150.0, 1.0)])
def test_paper_reward_matches_sim_truth(T, C):
    rng = np.random.default_rng(int(T * 10 + C * 100))
    s = chem.cspbbr3_spectra(T, C, rng)
    spectra = {
        "cd": {
            "wavelength_nm": s["wavelength_nm"].tolist(),
            "cd_mdeg": s["cd_mdeg"].tolist(),
            "absorbance": s["absorbance"].tolist(),
            "saturated": s["saturated"],
        }
    }
    r = compute_reward({"metric": "max_abs_cd_at_exciton"}, spectra)
    assert r.features["absorbance"]["exciton_nm"] == pytest.approx(s["exciton_nm"], abs=0.5)
    truth = abs(chem.cspbbr3_cd_truth(T, C))
    # Sample-to-sample gain (a few %) and temperature ripple come on top of the fit error.
    assert r.value == pytest.approx(truth, abs=4 * r.uncertainty + 0.1 * truth)
    assert r.loss == -r.value


def test_detector_saturation_is_flagged():
    rng = np.random.default_rng(1)
    s = chem.cspbbr3_spectra(90.0, 1.2, rng)
    assert s["saturated"]
    spectra = {
        "cd": {
            "wavelength_nm": s["wavelength_nm"].tolist(),
            "cd_mdeg": s["cd_mdeg"].tolist(),
            "absorbance": s["absorbance"].tolist(),
            "saturated": True,
        }
    }
    r = compute_reward({"metric": "max_abs_cd_at_exciton"}, spectra)
    assert "saturated" in r.flags
