"""The twin teaches the papers' chemistry (issue 22): Cs3Cu2I5 factor signs and order, the coil's
residence time and its approach to steady state, the CsPbBr3 concentration response."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc, spearmanr

from hardware_interface.sim import chemistry as ch
from hardware_interface.sim import rig
from hardware_interface.sim.fluidics import Fluidics, Syringe, tanks_in_series_rtd
from hardware_interface.sim.world import SimLab

SPACE = ch.CS3CU2I5_SPACE
# The papers' SHAP analysis: sign of each factor's effect on PLQY (0: no significant effect) and
# the order of importance.
PAPER_SIGN = {"T": +1, "q_CuI": +1, "q_ZnI2": +1, "q_CsOA": -1, "q_ODE": 0}
PAPER_ORDER = ["q_CsOA", "T", "q_CuI", "q_ZnI2", "q_ODE"]


@pytest.fixture(scope="module")
def lhs() -> tuple[np.ndarray, np.ndarray]:
    """A fixed 500-point Latin hypercube over the example's box and the twin's PLQY there."""
    unit = qmc.LatinHypercube(d=len(SPACE.names), seed=22).random(500)
    x = qmc.scale(unit, SPACE.lower, SPACE.upper)
    y = ch.cs3cu2i5_plqy_truth({n: x[:, i] for i, n in enumerate(SPACE.names)})
    return x, np.asarray(y)


def test_cs3cu2i5_factor_signs_follow_the_papers(lhs) -> None:
    x, y = lhs
    for i, name in enumerate(SPACE.names):
        rho = float(spearmanr(x[:, i], y)[0])
        if PAPER_SIGN[name] == 0:
            assert abs(rho) < 0.1, (name, rho)
        else:
            assert np.sign(rho) == PAPER_SIGN[name] and abs(rho) > 0.15, (name, rho)


def test_cs3cu2i5_importance_order_follows_the_papers(lhs) -> None:
    # Permutation importance of the noise-free twin: mean |PLQY change| when one factor's
    # column is shuffled, averaged over shuffles.
    x, y = lhs
    rng = np.random.default_rng(0)
    importance = {}
    for i, name in enumerate(SPACE.names):
        changes = []
        for _ in range(5):
            shuffled = x.copy()
            shuffled[:, i] = rng.permutation(shuffled[:, i])
            pred = ch.cs3cu2i5_plqy_truth({n: shuffled[:, j] for j, n in enumerate(SPACE.names)})
            changes.append(np.mean(np.abs(pred - y)))
        importance[name] = float(np.mean(changes))
    assert sorted(importance, key=importance.get, reverse=True) == PAPER_ORDER, importance
    assert importance["q_ODE"] < 0.1 * importance["q_CsOA"]  # "no significant effect"


def test_cs3cu2i5_levels_kept(lhs) -> None:
    # The levels that already agreed with the paper: best 31 %, random 16 tries ~17 % (tested
    # in test_chemistry.py); a fixed LHS sample lands far below the optimum on average.
    _, y = lhs
    assert float(y.max()) < ch.CS3CU2I5_OPTIMUM[1]
    assert 1.0 < float(np.mean(y)) < 8.0


def test_cs3cu2i5_residence_time_40_to_60_s() -> None:
    volume = rig.RIGS["cs3cu2i5"].tube_volume_mL
    fast = volume / (sum(SPACE.upper[1:]) / 1000.0) * 60.0
    slow = volume / (sum(SPACE.lower[1:]) / 1000.0) * 60.0
    assert fast == pytest.approx(40.0, abs=1.0) and slow == pytest.approx(60.0, abs=1.0)
    assert SimLab("cs3cu2i5").residence_time_s == pytest.approx(48.0, abs=1.0)  # 750 uL/min


def test_tanks_in_series_distribution_has_mean_one_and_a_tail_to_two() -> None:
    theta, weights = tanks_in_series_rtd(rig.CS3CU2I5_DISPERSION_TANKS)
    assert float(np.sum(theta * weights)) == pytest.approx(1.0, abs=1e-12)
    assert float(np.sum(weights)) == pytest.approx(1.0)
    assert 0.3 < theta.min() < 0.6 and 1.6 < theta.max() < 2.1
    with pytest.raises(ValueError, match="tanks"):
        tanks_in_series_rtd(0)


def _step_response(tanks: int, at_theta: list[float]) -> list[float]:
    """Fraction of new fluid at the outlet theta residence times after the inlet switched."""
    volume, rate = 0.6, 0.75  # mL, mL/min
    tau = volume / rate * 60.0
    fl = Fluidics(
        syringes={p: Syringe(p, 100.0, 20.0) for p in ("SP1", "SP2")},
        stock_mL={"old": 100.0, "new": 100.0},
        tube_volume_mL=volume,
        dispersion_tanks=tanks,
    )
    fl.start(0.0, "SP1", "withdraw", 50.0, 20.0, "old")
    fl.start(0.0, "SP2", "withdraw", 50.0, 20.0, "new")
    switch = 2000.0  # s, long after the syringes were filled
    fl.start(switch - 5.0 * tau, "SP1", "infuse", rate * 5.0 * tau / 60.0, rate, None)
    fl.start(switch, "SP2", "infuse", rate * 4.0 * tau / 60.0, rate, None)
    out = []
    for theta in at_theta:
        parcels = fl.outlet_parcels(switch + theta * tau, 0.01)
        new = sum(p.volume_mL for p in parcels if "new" in p.flows_mL_min)
        out.append(new / sum(p.volume_mL for p in parcels))
    return out


def test_dispersion_spreads_a_step_over_about_two_residence_times() -> None:
    plug = _step_response(0, [0.9, 1.1])
    assert plug == pytest.approx([0.0, 1.0])
    early, middle, late, settled = _step_response(
        rig.CS3CU2I5_DISPERSION_TANKS, [0.3, 1.0, 1.6, 2.0]
    )
    assert early == 0.0
    assert 0.3 < middle < 0.7
    assert 0.85 < late < 1.0
    assert settled == pytest.approx(1.0)


def test_cs3cu2i5_in_line_pl_steady_after_about_two_residence_times() -> None:
    lab = SimLab(chemistry="cs3cu2i5", seed=4)
    assert lab._fluidics.dispersion_tanks == lab.spec.dispersion_tanks > 0  # the rig's spread
    x = ch.CS3CU2I5_OPTIMUM[0]
    rates = [x["q_CuI"], x["q_ZnI2"], x["q_CsOA"], x["q_ODE"]]
    tau = lab.spec.tube_volume_mL / (sum(rates) / 1000.0) * 60.0
    minutes = 4.0 * tau / 60.0
    for pid, q in zip(lab.pump_ids, rates, strict=True):
        lab.wait(lab.pump_start(pid, "withdraw", q / 1000.0 * minutes + 0.01, 20.0))
    lab.heater_set(x["T"], 30.0)
    while not lab.heater_stable():
        lab.wait(2.0)
    for pid, q in zip(lab.pump_ids, rates, strict=True):
        lab.pump_start(pid, "infuse", q / 1000.0 * minutes, q / 1000.0)
    values = {}
    start = lab.clock.now()
    for theta in (0.3, 1.0, 2.0, 3.0):
        lab.wait(start + theta * tau - lab.clock.now())
        lab.measure_pl()
        values[theta] = lab.last_sample_conditions()
    assert values[0.3]["value"] == 0.0  # solvent still
    assert values[1.0]["value"] < 0.8 * ch.CS3CU2I5_OPTIMUM[1]
    assert not values[1.0]["equilibrated"]
    assert values[2.0]["equilibrated"] and values[3.0]["equilibrated"]
    assert values[2.0]["value"] == pytest.approx(ch.CS3CU2I5_OPTIMUM[1], rel=0.01)


def test_cspbbr3_cd_grows_with_c_up_to_about_one() -> None:
    # The MAOSIC paper: |CD| roughly proportional to C up to 1.0 mmol/mL, optimum near 0.8.
    c = np.arange(0.2, 1.0 + 1e-9, 0.05)
    t_best = np.arange(110.0, 150.0 + 1e-9, 0.5)
    best = ch.cspbbr3_cd_truth(t_best[:, None], c[None, :]).max(axis=0)
    assert np.all(np.diff(best[c <= 0.8]) > 0)  # rises with C up to the optimum
    assert best[-1] >= 0.95 * ch.CSPBBR3_OPTIMUM[1]  # and still ~the optimum at 1.0
    assert ch.cspbbr3_cd_truth(130.0, 0.4) / ch.cspbbr3_cd_truth(130.0, 0.8) == pytest.approx(
        0.5, abs=0.03
    )
