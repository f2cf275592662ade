"""A dense sample clips the UV end of its absorbance; the exciton beyond it is still measured."""

import numpy as np

from hardware_interface.sim.chemistry import cspbbr3_cd_truth, cspbbr3_spectra
from maosic.analysis.features import absorption_features
from maosic.analysis.reward import compute_reward


def test_clipped_uv_edge_is_cut_and_exciton_found():
    spec = cspbbr3_spectra(127.5, 1.12, np.random.default_rng(4))
    wl, absorbance = spec["wavelength_nm"], spec["absorbance"]
    assert np.sum(absorbance == absorbance.max()) >= 10  # the detector really clipped
    feats = absorption_features(wl, absorbance)
    assert "saturated" in feats["flags"]
    assert abs(feats["exciton_nm"] - spec["exciton_nm"]) < 5.0
    cd = {
        "wavelength_nm": wl.tolist(),
        "cd_mdeg": spec["cd_mdeg"].tolist(),
        "absorbance": absorbance.tolist(),
    }
    reward = compute_reward({"metric": "max_abs_cd_at_exciton"}, {"cd": cd, "absorbance": cd})
    assert "saturated" in reward.features["absorbance"]["flags"]
    assert abs(reward.value - cspbbr3_cd_truth(127.5, 1.12)) < 0.1
