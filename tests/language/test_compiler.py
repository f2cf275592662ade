"""Compiler and Program: the CsPbBr3 experiment both ways, plans, bindings, resources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maosic.language import LanguageError, compile_config, compile_formula, load_config
from maosic.language.instructions import INSTRUCTIONS
from maosic.language.symbols import MODULES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# The daemon's method table (ARCHITECTURE contract A); every plan call must be one of these.
DAEMON_METHODS = {
    "system.describe", "system.status", "system.stop", "system.wait", "system.reset_faults",
    "pump.fill", "pump.infuse", "pump.withdraw", "pump.parallel", "pump.stop", "pump.status",
    "heater.set", "heater.status", "heater.off", "robot.move", "robot.status",
    "spectrometer.absorbance", "spectrometer.cd", "spectrometer.pl", "valve.set",
}  # fmt: skip

Q, C_CS = 0.15, 3.6  # contract B: total flow (mL/min), Cs-oleate stock (mmol/mL)


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLES / "cspbbr3.json")


@pytest.fixture(scope="module")
def formula() -> str:
    return (EXAMPLES / "cspbbr3.formula").read_text(encoding="utf-8")


def test_cspbbr3_formula_and_config_give_identical_codes(config, formula) -> None:
    from_formula = compile_formula(formula, config)
    from_config = compile_config(config)
    assert from_formula.instructions == from_config.instructions
    assert from_formula.instructions == config.experiment
    point = {"T": 127.5, "C": 0.55}
    assert from_formula.plan(point) == from_config.plan(point)
    assert from_formula.plan(point, include_init=True) == from_config.plan(point, include_init=True)


def test_cspbbr3_physical_sequence(config) -> None:
    plan = compile_config(config).plan({"T": 130.0, "C": 0.8})
    methods = [c["method"] for c in plan]
    assert methods == [
        "pump.stop", "pump.stop", "pump.stop", "pump.fill", "pump.fill", "pump.fill",
        "heater.set", "pump.parallel", "robot.move", "robot.move", "spectrometer.cd",
        "robot.move", "robot.move",
    ]  # fmt: skip
    heat = plan[6]["params"]
    assert heat["setpoint_C"] == 130.0 and heat["wait_stable"] is True
    moves = {m["pump"]: m for m in plan[7]["params"]["moves"]}
    r1 = Q * 0.8 / C_CS
    assert moves["SP1"]["rate_mL_min"] == pytest.approx(r1)
    assert moves["SP2"]["rate_mL_min"] == pytest.approx(2 * r1)
    assert moves["SP3"]["rate_mL_min"] == pytest.approx(Q - 3 * r1)
    total = sum(m["rate_mL_min"] for m in moves.values())
    assert total == pytest.approx(Q)
    t_eq = config.defaults()["t_eq"]
    for m in moves.values():  # every pump runs for the equilibration time
        assert m["volume_mL"] / m["rate_mL_min"] * 60 == pytest.approx(t_eq)
        assert m["volume_mL"] <= 0.5  # the sim's syringes
    positions = [c["params"]["position"] for c in plan if c["method"] == "robot.move"]
    assert positions == ["sampler", "cd", "cd", "waste"]
    fills = {c["params"]["reagent"] for c in plan if c["method"] == "pump.fill"}
    assert fills == {"Cs-oleate", "PbBr2", "ODE"}


@pytest.mark.parametrize("c", [0.2, 0.5, 1.0, 1.2])
def test_cspbbr3_plans_respect_syringes_across_the_range(config, c: float) -> None:
    plan = compile_config(config).plan({"T": 90.0, "C": c})
    parallel = next(p for p in plan if p["method"] == "pump.parallel")
    for move in parallel["params"]["moves"]:
        assert 0 < move["volume_mL"] <= 0.5 and move["rate_mL_min"] > 0


def test_zero_rate_stream_is_dropped_at_highest_concentration(config) -> None:
    plan = compile_config(config).plan({"T": 130.0, "C": 1.2})
    parallel = next(p for p in plan if p["method"] == "pump.parallel")
    assert [m["pump"] for m in parallel["params"]["moves"]] == ["SP1", "SP2"]
    assert all(p["params"].get("pump") != "SP3" for p in plan if p["method"] == "pump.fill")


def test_plan_uses_only_daemon_methods_and_json(config) -> None:
    plan = compile_config(config).plan(config.defaults(), include_init=True)
    assert {c["method"] for c in plan} <= DAEMON_METHODS
    assert json.loads(json.dumps(plan)) == plan
    assert all(spec.method in DAEMON_METHODS for spec in INSTRUCTIONS.values())
    for spec in MODULES.values():
        assert set(spec.methods) <= DAEMON_METHODS
        assert set(spec.codes) <= set(INSTRUCTIONS)


def test_modules_used_and_reagent_volumes(config) -> None:
    prog = compile_config(config)
    assert prog.modules_used() == {"SP1", "SP2", "SP3", "H1", "CR1", "SPEC1"}
    vol = prog.reagent_volumes({"T": 130.0, "C": 0.8})
    r1 = Q * 0.8 / C_CS
    assert vol["Cs-oleate"] == pytest.approx(r1 * 2)
    assert vol["PbBr2"] == pytest.approx(2 * r1 * 2)
    assert vol["ODE"] == pytest.approx((Q - 3 * r1) * 2)


def test_missing_binding_names_the_variable_and_its_position() -> None:
    prog = compile_formula("R1·SP1[0.1, 0, 0.05] × H[$T]")
    with pytest.raises(LanguageError) as info:
        prog.plan({})
    assert info.value.kind == "missing-binding" and info.value.column == 26
    assert "$T" in info.value.message
    assert prog.plan({"$T": 100})[2]["params"]["setpoint_C"] == 100.0  # '$' prefix accepted


def test_config_program_needs_optimised_variables_but_not_constants(config) -> None:
    prog = compile_config(config)
    with pytest.raises(LanguageError) as info:
        prog.plan({"T": 100.0})
    assert info.value.kind == "missing-binding" and "$C" in info.value.message
    with pytest.raises(LanguageError) as info:
        prog.plan({"T": 300.0, "C": 0.5})
    assert info.value.kind == "out-of-range" and "[90, 180]" in info.value.message


def test_bound_value_outside_module_range_is_reported_at_the_expression() -> None:
    prog = compile_formula("R1·SP1[0.1, 0, 0.05] × H[$T + 100]")
    with pytest.raises(LanguageError) as info:
        prog.plan({"T": 200})
    assert (info.value.kind, info.value.column) == ("out-of-range", 29)
    assert "setpoint_C = 300" in info.value.message


def test_non_numeric_binding_is_rejected() -> None:
    prog = compile_formula("R1·SP1[$v, 0, 0.05]")
    with pytest.raises(LanguageError) as info:
        prog.plan({"v": "lots"})  # type: ignore[dict-item]
    assert info.value.kind == "missing-binding"


def test_division_by_zero_at_plan_time_points_at_the_slash() -> None:
    prog = compile_formula("R1·SP1[0.1, 0, 1/$x]")
    with pytest.raises(LanguageError) as info:
        prog.plan({"x": 0})
    assert info.value.column == 17 and "division by zero" in info.value.message


def test_zero_rate_with_volume_is_an_error() -> None:
    prog = compile_formula("R1·SP1[0.1, 0, $r]")
    with pytest.raises(LanguageError) as info:
        prog.plan({"r": 0})
    assert info.value.kind == "out-of-range" and "rate is 0" in info.value.message


def test_plan_rounds_floating_point_noise_to_zero() -> None:
    prog = compile_formula("R1·SP1[0.1, 0, 0.15 - 3*$c*0.15/3.6 + 0.01]")
    rate = prog.plan({"c": 1.2})[-1]["params"]["rate_mL_min"]
    assert rate == 0.01


def test_times_unrolls_into_repeated_calls() -> None:
    plan = compile_formula("R1·SP1[0.1, 30, 0.5, 2]").plan()
    assert [c["method"] for c in plan] == [
        "pump.stop", "pump.fill", "pump.infuse", "system.wait", "pump.infuse", "system.wait",
    ]  # fmt: skip
    assert plan[1]["params"]["volume_mL"] == pytest.approx(0.2)
    assert plan[2]["params"] == {"pump": "SP1", "volume_mL": 0.1, "rate_mL_min": 0.5, "wait": True}


def test_cs3cu2i5_config_compiles_with_pl() -> None:
    cfg = load_config(EXAMPLES / "cs3cu2i5.json")
    prog = compile_config(cfg)
    assert cfg.search_space().names == ["T", "q_CuI", "q_ZnI2", "q_CsOA", "q_ODE"]
    assert prog.modules_used() == {"SP1", "SP2", "SP3", "SP4", "H1", "PL1"}
    point = {"T": 140, "q_CuI": 150, "q_ZnI2": 93, "q_CsOA": 172, "q_ODE": 350}
    plan = prog.plan(point)
    parallel = next(c for c in plan if c["method"] == "pump.parallel")
    rates = {m["pump"]: m["rate_mL_min"] for m in parallel["params"]["moves"]}
    assert rates == pytest.approx({"SP1": 0.15, "SP2": 0.093, "SP3": 0.172, "SP4": 0.35})
    assert plan[-1] == {
        "method": "spectrometer.pl", "params": {"integration_ms": 100.0, "excitation_nm": 300.0}
    }  # fmt: skip
    fills = [c["params"]["reagent"] for c in plan if c["method"] == "pump.fill"]
    assert fills == ["CuI", "ZnI2", "Cs-oleate", "ODE"]  # CsOA is the Cs-oleate bottle
    cfg_formula = (EXAMPLES / "cs3cu2i5.formula").read_text(encoding="utf-8")
    assert compile_formula(cfg_formula, cfg).instructions == prog.instructions


def test_numpy_scalars_bind_and_non_finite_values_do_not(config) -> None:
    import numpy as np

    prog = compile_config(config)
    plan = prog.plan({"T": np.float32(120.0), "C": np.float64(0.5)})
    assert plan[6]["params"]["setpoint_C"] == 120.0
    assert isinstance(plan[6]["params"]["setpoint_C"], float)
    with pytest.raises(LanguageError) as info:
        prog.plan({"T": float("nan"), "C": 0.5})
    assert "finite" in info.value.message
