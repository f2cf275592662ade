"""SimLab: reagent consumption, pumps, the plug-flow reactor, robot, samples and speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hardware_interface.sim import chemistry as ch
from hardware_interface.sim import rig
from hardware_interface.sim.errors import (
    BusyError,
    LimitError,
    NotReadyError,
    OfflineError,
    ReagentError,
    UnknownModuleError,
)
from hardware_interface.sim.world import SimLab


def fill_all(lab: SimLab) -> None:
    """Top up every syringe from its stock bottle and wait for it."""
    longest = 0.0
    for pid in lab.pump_ids:
        room = lab.syringe_capacity_mL(pid) - lab.syringe_volume_mL(pid)
        if room > 1e-3:
            longest = max(longest, lab.pump_start(pid, "withdraw", room, 5.0))
    lab.wait(longest)


def flow(lab: SimLab, c: float, seconds: float) -> None:
    """Run SP1..SP3 at the contract-B rates for concentration c for ``seconds``."""
    rates = rig.cspbbr3_rates_mL_min(c)
    durations = [
        lab.pump_start(pid, "infuse", r * seconds / 60.0, r)
        for pid, r in zip(lab.pump_ids, rates, strict=True)
        if r > 0
    ]
    lab.wait(max(durations))


def experiment(lab: SimLab, t: float, c: float, equilibrate_s: float = rig.EQUILIBRATION_S) -> dict:
    fill_all(lab)
    lab.heater_set(t, 30.0)
    while not lab.heater_stable():
        lab.wait(2.0)
    flow(lab, c, equilibrate_s)
    lab.wait(lab.robot_move("sampler"))
    lab.wait(lab.robot_move("cd"))
    spectrum = lab.measure_cd(100.0)
    info = lab.last_sample_conditions()
    lab.wait(lab.robot_move("waste"))
    return {"spectrum": spectrum, "info": info}


def cd_at_exciton(spectrum: dict) -> float:
    wl = np.array(spectrum["wavelength_nm"])
    absorb = np.array(spectrum["absorbance"])
    cd = np.array(spectrum["cd_mdeg"])
    window = (wl > 420.0) & (wl < 480.0)
    i = int(np.flatnonzero(window)[np.argmax(absorb[window])])
    return abs(float(cd[i]))


# --- reagents and pumps -------------------------------------------------------------------------


def test_withdraw_consumes_stock_and_infuse_empties_the_syringe() -> None:
    lab = SimLab()
    before = lab.stock_mL("Cs-oleate")
    duration = lab.pump_start("SP1", "withdraw", 0.4, 2.0)
    assert duration == pytest.approx(0.4 / 2.0 * 60.0)
    assert lab.pump_busy("SP1")
    lab.wait(duration / 2)
    assert lab.syringe_volume_mL("SP1") == pytest.approx(0.2)
    lab.wait(duration / 2)
    assert not lab.pump_busy("SP1")
    assert lab.syringe_volume_mL("SP1") == pytest.approx(0.4)
    assert lab.syringe_reagent("SP1") == "Cs-oleate"
    assert lab.stock_mL("Cs-oleate") == pytest.approx(before - 0.4)
    lab.wait(lab.pump_start("SP1", "infuse", 0.3, 0.15))
    assert lab.syringe_volume_mL("SP1") == pytest.approx(0.1)
    status = lab.pump_status("SP1")
    assert status["capacity_mL"] == rig.SYRINGE_ML and status["state"] == "ok"


def test_overfill_empty_syringe_and_empty_stock_are_refused() -> None:
    lab = SimLab()
    with pytest.raises(LimitError, match="over-fill") as info:
        lab.pump_start("SP2", "withdraw", 0.6, 1.0)
    assert info.value.module == "SP2" and info.value.code == -32001
    with pytest.raises(ReagentError, match="fill it first"):
        lab.pump_start("SP2", "infuse", 0.1, 0.1)
    lab.set_stock_mL("PbBr2", 0.05)
    with pytest.raises(ReagentError, match="only 0.050 mL left") as info:
        lab.pump_start("SP2", "withdraw", 0.2, 1.0)
    assert info.value.code == -32006
    with pytest.raises(UnknownModuleError, match="no stock bottle"):
        lab.pump_start("SP2", "withdraw", 0.1, 1.0, reagent="water")
    with pytest.raises(UnknownModuleError, match="SP9"):
        lab.syringe_volume_mL("SP9")
    with pytest.raises(LimitError, match="rate_mL_min"):
        lab.pump_start("SP3", "withdraw", 0.1, 50.0)


def test_a_campaign_runs_out_of_reagent() -> None:
    lab = SimLab()
    lab.set_stock_mL("Cs-oleate", 1.2)
    runs = 0
    with pytest.raises(ReagentError, match="Cs-oleate"):
        for _ in range(50):
            lab.wait(lab.pump_start("SP1", "withdraw", 0.5, 5.0))
            lab.wait(lab.pump_start("SP1", "infuse", 0.5, 5.0))
            runs += 1
    assert runs == 2
    assert lab.stock_mL("Cs-oleate") == pytest.approx(0.2)


def test_busy_pump_and_stop_refunds_the_bottle() -> None:
    lab = SimLab()
    lab.pump_start("SP3", "withdraw", 0.5, 1.0)  # 30 s
    with pytest.raises(BusyError, match="SP3"):
        lab.pump_start("SP3", "withdraw", 0.1, 1.0)
    lab.wait(12.0)
    lab.pump_stop("SP3")
    assert lab.syringe_volume_mL("SP3") == pytest.approx(0.2)
    assert lab.stock_mL("ODE") == pytest.approx(rig.CSPBBR3_STOCK_ML["ODE"] - 0.2)
    assert not lab.pump_busy("SP3")


def test_wrong_reagent_in_a_loaded_syringe_is_refused() -> None:
    lab = SimLab()
    lab.wait(lab.pump_start("SP1", "withdraw", 0.2, 5.0))
    with pytest.raises(ReagentError, match="holds"):
        lab.pump_start("SP1", "withdraw", 0.1, 5.0, reagent="ODE")


def test_emergency_stop_stops_pumps_and_heater() -> None:
    lab = SimLab()
    lab.heater_set(120.0, 10.0)
    lab.pump_start("SP1", "withdraw", 0.5, 0.5)
    stopped = lab.emergency_stop()
    assert set(stopped) >= {"SP1", "SP2", "SP3", "H1"}
    assert not lab.pump_busy("SP1")
    assert lab.heater_setpoint_C() is None


# --- reactor, robot and samples ------------------------------------------------------------------


def test_equilibrated_sample_has_the_requested_conditions() -> None:
    lab = SimLab(seed=3)
    out = experiment(lab, 130.0, 0.8)
    info = out["info"]
    assert info["equilibrated"]
    assert info["C_mmol_mL"] == pytest.approx(0.8, abs=1e-6)
    assert info["T_C"] == pytest.approx(130.0, abs=1.0)
    assert info["value"] == pytest.approx(ch.cspbbr3_cd_truth(130.0, 0.8), abs=0.02)
    assert cd_at_exciton(out["spectrum"]) == pytest.approx(1.0, abs=0.12)


def test_short_equilibration_gives_a_mixture() -> None:
    lab = SimLab(seed=4)
    experiment(lab, 130.0, 0.3)
    out = experiment(lab, 130.0, 0.9, equilibrate_s=0.6 * rig.RESIDENCE_TIME_S)
    assert out["info"]["C_mmol_mL"] == pytest.approx(0.3, abs=1e-6)  # the previous product
    out = experiment(lab, 130.0, 0.9, equilibrate_s=0.6 * rig.RESIDENCE_TIME_S)
    info = out["info"]  # 1.2 residence times of new flow in all: old and new product mixed
    assert not info["equilibrated"]
    assert 0.35 < info["C_mmol_mL"] < 0.85
    out = experiment(lab, 130.0, 0.9, equilibrate_s=rig.EQUILIBRATION_S)
    assert out["info"]["equilibrated"]
    assert out["info"]["C_mmol_mL"] == pytest.approx(0.9, abs=1e-6)


def test_first_sample_before_the_tube_is_flushed_is_solvent() -> None:
    lab = SimLab()
    fill_all(lab)
    flow(lab, 0.8, 0.5 * rig.RESIDENCE_TIME_S)
    lab.wait(lab.robot_move("sampler"))
    assert lab.last_sample_conditions()["value"] == 0.0
    lab.wait(lab.robot_move("cd"))
    assert cd_at_exciton(lab.measure_cd()) < 0.15


def test_temperature_history_matters() -> None:
    """Product made while the heater was still ramping is not the product of the setpoint."""
    lab = SimLab(seed=5)
    fill_all(lab)
    lab.heater_set(130.0, 10.0)  # ~10 min ramp; flow during the ramp
    flow(lab, 0.8, rig.EQUILIBRATION_S)
    lab.wait(lab.robot_move("sampler"))
    info = lab.last_sample_conditions()
    assert info["T_C"] < 100.0
    assert info["value"] < 0.3


def test_robot_moves_take_time_and_measurements_need_the_cuvette() -> None:
    lab = SimLab()
    with pytest.raises(NotReadyError, match="robot is at 'home'"):
        lab.measure_cd()
    duration = lab.robot_move("cd")
    assert duration == pytest.approx(rig.ROBOT_MOVE_S[frozenset({"home", "cd"})] + rig.ROBOT_GRIP_S)
    assert lab.robot_busy()
    with pytest.raises(BusyError, match="CR1"):
        lab.robot_move("abs")
    with pytest.raises(NotReadyError, match="still moving"):
        lab.measure_cd()
    lab.wait(duration)
    assert lab.robot_position() == "cd"
    with pytest.raises(NotReadyError, match="cuvette is empty"):
        lab.measure_cd()
    with pytest.raises(LimitError, match="unknown position"):
        lab.robot_move("moon")


def test_waste_discards_the_sample_and_abs_position_measures_absorbance() -> None:
    lab = SimLab(seed=6)
    experiment(lab, 130.0, 0.8)  # ends at waste
    assert not lab.cuvette_loaded()
    lab.wait(lab.robot_move("sampler"))
    lab.wait(lab.robot_move("abs"))
    absorb = lab.measure_absorbance(100.0)
    assert set(absorb) == {"wavelength_nm", "absorbance", "saturated"}
    with pytest.raises(NotReadyError, match="'cd'"):
        lab.measure_cd()
    with pytest.raises(LimitError, match="integration_ms"):
        lab.measure_absorbance(0.0)


def test_longer_integration_lowers_cd_noise() -> None:
    lab = SimLab(seed=7)
    experiment(lab, 178.0, 0.3)
    lab.wait(lab.robot_move("sampler"))
    lab.wait(lab.robot_move("cd"))
    short = np.std(lab.measure_cd(10.0)["cd_mdeg"][-100:])
    long = np.std(lab.measure_cd(1000.0)["cd_mdeg"][-100:])
    assert long < short / 3.0


def test_spectra_are_deterministic_under_a_seed() -> None:
    a = experiment(SimLab(seed=9), 120.0, 0.6)["spectrum"]["cd_mdeg"]
    b = experiment(SimLab(seed=9), 120.0, 0.6)["spectrum"]["cd_mdeg"]
    c = experiment(SimLab(seed=10), 120.0, 0.6)["spectrum"]["cd_mdeg"]
    assert a == b and a != c


def test_offline_module_refuses() -> None:
    lab = SimLab()
    lab.set_offline("SP1")
    with pytest.raises(OfflineError, match="SP1") as info:
        lab.pump_start("SP1", "withdraw", 0.1, 1.0)
    assert info.value.code == -32003
    assert lab.status()["modules"]["SP1"]["state"] == "offline" and not lab.status()["ok"]
    lab.set_offline("SP1", False)
    lab.pump_start("SP1", "withdraw", 0.1, 1.0)


def test_valves_and_status() -> None:
    lab = SimLab()
    lab.valve_set("V1", True)
    assert lab.valve_open("V1") and not lab.valve_open("V2")
    with pytest.raises(UnknownModuleError, match="V7"):
        lab.valve_set("V7", True)
    status = lab.status()
    assert status["ok"] and set(status["modules"]) == set(lab.module_ids)


def test_ground_truth_and_optimum() -> None:
    lab = SimLab()
    (x_opt, v_opt) = lab.optimum()
    assert lab.ground_truth(x_opt) == pytest.approx(v_opt, abs=1e-3)
    with pytest.raises(KeyError, match="missing"):
        lab.ground_truth({"T": 130.0})
    with pytest.raises(ValueError, match="unknown chemistry"):
        SimLab(chemistry="gold")


def test_250_experiments_run_in_well_under_a_minute() -> None:
    lab = SimLab(seed=12)
    rng = np.random.default_rng(0)
    t0 = time.monotonic()
    for _ in range(250):
        experiment(lab, float(rng.uniform(90, 180)), float(rng.uniform(0.2, 1.2)))
    assert time.monotonic() - t0 < 20.0
    assert lab.clock.now() > 250 * rig.EQUILIBRATION_S  # real simulated time elapsed


# --- Cs3Cu2I5 rig ------------------------------------------------------------------------------


def test_cs3cu2i5_inline_pl_reads_the_plqy() -> None:
    lab = SimLab(chemistry="cs3cu2i5", seed=2)
    assert lab.pump_ids == ["SP1", "SP2", "SP3", "SP4"]
    x, best = ch.CS3CU2I5_OPTIMUM
    blank = lab.measure_pl()
    assert blank["pl_area"] < 0.01 * 4e4 * 31
    rates = [x["q_CuI"], x["q_ZnI2"], x["q_CsOA"], x["q_ODE"]]
    fill_minutes = 3.0 * lab.residence_time_s / 60.0
    for pid, q in zip(lab.pump_ids, rates, strict=True):
        lab.wait(lab.pump_start(pid, "withdraw", q / 1000.0 * fill_minutes + 0.01, 20.0))
    lab.heater_set(x["T"], 30.0)
    while not lab.heater_stable():
        lab.wait(2.0)
    for pid, q in zip(lab.pump_ids, rates, strict=True):
        lab.pump_start(pid, "infuse", q / 1000.0 * fill_minutes, q / 1000.0)
    lab.wait(2.5 * lab.residence_time_s)
    pl = lab.measure_pl(100.0, 300.0)
    info = lab.last_sample_conditions()
    assert info["equilibrated"]
    assert info["q_CuI"] == pytest.approx(x["q_CuI"], rel=1e-6)
    assert info["value"] == pytest.approx(best, abs=0.5)
    assert pl["plqy_proxy_pct"] == pytest.approx(best, rel=0.08)
    wl = np.array(pl["wavelength_nm"])
    assert wl[int(np.argmax(pl["intensity"]))] == pytest.approx(450.0, abs=4.0)
    with pytest.raises(LimitError, match="excitation_nm"):
        lab.measure_pl(100.0, 600.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda lab: lab.pump_start("SP1", "withdraw", "lots", 1.0), "volume_mL must be a number"),
        (lambda lab: lab.pump_start("SP1", "withdraw", 0.1, float("nan")), "rate_mL_min"),
        (lambda lab: lab.pump_start("SP1", "sideways", 0.1, 1.0), "direction"),
        (lambda lab: lab.heater_set(float("inf"), 10.0), "setpoint_C must be finite"),
        (lambda lab: lab.heater_set(100.0, True), "ramp_C_min must be a number"),
        (lambda lab: lab.measure_pl("long"), "integration_ms"),
        (lambda lab: lab.wait(-1.0), "seconds"),
        (lambda lab: lab.robot_move(3), "unknown position"),
    ],
)
def test_bad_input_gives_a_clear_limit_error(call, match: str) -> None:
    with pytest.raises(LimitError, match=match) as info:
        call(SimLab())
    assert info.value.code == -32001 and info.value.module


def test_repeating_the_same_setpoint_keeps_the_heater_stable() -> None:
    lab = SimLab()
    lab.heater_set(120.0, 60.0)
    lab.wait(600.0)
    assert lab.heater_stable()
    lab.heater_set(120.0, 30.0)
    assert lab.heater_stable() and lab.heater_ramp_C_min() == 30.0
    lab.heater_set(121.0, 30.0)
    assert not lab.heater_stable()


def test_pl_proxy_ignores_the_side_peaks() -> None:
    x = dict(ch.CS3CU2I5_OPTIMUM[0], T=120.0)  # strong 600 nm side peak
    clean, abs_300 = ch.cs3cu2i5_pl_clean(x)
    peak, area = ch.pl_metrics(clean)
    assert ch.plqy_proxy_pct(peak, abs_300) == pytest.approx(ch.cs3cu2i5_plqy_truth(x), rel=1e-3)
    main_only = ch.PL_COUNTS_PER_PLQY * (1 - 10 ** (-abs_300)) * ch.cs3cu2i5_plqy_truth(x)
    assert area > 1.2 * main_only  # the side peak is really there
