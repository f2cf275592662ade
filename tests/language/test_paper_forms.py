"""The language as the MAOSIC paper writes it: Table S2's bare forms, subscripted indices,
numbered robot stations, and Fig. S10's configuration with instruction strings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from maosic.campaign import default_target
from maosic.language import LanguageError, compile_formula, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Table S2's reaction on the CsPbBr3 rig: three reagents with the rig's flow ratio, a total
# flow Q (mL/min) and a pumping time t_eq (s) that bare pumps take their vectors from.
CONFIG: dict[str, Any] = {
    "type": "flow",
    "name": "Table S2",
    "reagent": [
        {"formula": "Cs-oleate", "ratio": 1},
        {"formula": "PbBr2", "ratio": 2},
        {"formula": "ODE", "ratio": 3},
    ],
    "param": {
        "T": {"default": 130, "bound": [90, 180], "dx": 0.5, "var": 1},
        "Q": {"default": 0.15},
        "t_eq": {"default": 120},
    },
    "formula": "(R1·SP1 + R2·SP2 + R3·SP3) × H | ABS-CD",
}
POINT = {"T": 140.0}


def _cfg(**changes: Any) -> Any:
    raw = copy.deepcopy(CONFIG)
    raw.update(changes)
    return load_config(raw)


def _plan(formula: str, cfg: Any = None) -> list[dict[str, Any]]:
    return compile_formula(formula, cfg or _cfg()).plan(POINT)


# -- Table S2 and Fig. S9 -------------------------------------------------------------------------
WRITTEN = (
    "(R1·SP1[$Q*1/6*$t_eq/60, 0, $Q*1/6] + R2·SP2[$Q*2/6*$t_eq/60, 0, $Q*2/6]"
    " + R3·SP3[$Q*3/6*$t_eq/60, 0, $Q*3/6]) × H[$T] | ABS-CD[100]"
)


def test_fig_s9_bare_formula_compiles_to_the_written_one() -> None:
    bare = compile_formula(CONFIG["formula"], _cfg())
    written = compile_formula(WRITTEN, _cfg())
    assert bare.instructions == written.instructions
    assert bare.plan(POINT) == written.plan(POINT)
    moves = next(c for c in bare.plan(POINT) if c["method"] == "pump.parallel")["params"]["moves"]
    # Q = 0.15 mL/min split 1:2:3, each pump running t_eq = 120 s
    assert [m["rate_mL_min"] for m in moves] == pytest.approx([0.025, 0.05, 0.075])
    assert [m["volume_mL"] for m in moves] == pytest.approx([0.05, 0.1, 0.15])
    heat = next(c for c in bare.plan(POINT) if c["method"] == "heater.set")
    assert heat["params"]["setpoint_C"] == 140.0  # the optimised $T


@pytest.mark.parametrize(
    ("formula", "codes"),
    [
        ("R1·SP1", ["PUMP_INIT", "FILL", "PUMP"]),
        ("R1 + R2", ["PUMP_INIT", "PUMP_INIT", "FILL", "FILL", "PUMP_PARALLEL"]),
        ("R1 × H", ["PUMP_INIT", "FILL", "HEAT", "PUMP"]),
        ("(R1 + R2) × H", ["PUMP_INIT", "PUMP_INIT", "FILL", "FILL", "HEAT", "PUMP_PARALLEL"]),
        (
            "(R1·SP1 + R2·SP2 + R3·SP3) × H | ABS-CD",
            ["PUMP_INIT"] * 3 + ["FILL"] * 3 + ["HEAT", "PUMP_PARALLEL"]
            + ["MOVE", "MOVE", "ABS-CD", "MOVE"],
        ),
        ("R1·SP1 | ABS", ["PUMP_INIT", "FILL", "PUMP", "MOVE", "MOVE", "ABS", "MOVE"]),
        ("R2·SP2 | PL", ["PUMP_INIT", "FILL", "PUMP", "PL"]),  # in-line: nothing to carry
        ("PbBr2 × H", ["PUMP_INIT", "FILL", "HEAT", "PUMP"]),
    ],
)  # fmt: skip
def test_table_s2_forms_compile(formula: str, codes: list[str]) -> None:
    program = compile_formula(formula, _cfg())
    assert [i["code"] for i in program.instructions] == codes
    assert program.plan(POINT)  # and bind into a plan


def test_a_named_reagent_without_a_pump_takes_its_listed_pump() -> None:
    fills = [i for i in compile_formula("PbBr2 × H", _cfg()).instructions if i["code"] == "FILL"]
    assert fills[0]["pump"] == "SP2" and fills[0]["reagent"] == "PbBr2"


SPELLINGS = [
    "(R1·SP1 + R2·SP2 + R3·SP3) × H | ABS-CD",
    "(R_1·SP_1 + R_2·SP_2 + R_3·SP_3) × H_1 | ABS-CD",
    "(R₁·SP₁ + R₂·SP₂ + R₃·SP₃) × H₁ | ABS-CD",
    "(R1*SP1 + R2.SP2 + R3⋅SP3) x H | ABS-CD",
    "(R1 + R2 + R3) × H | ABS-CD",
    "(R1 + R2 + R3) × H | CR[2, 4] | ABS-CD | CR[4, 5]",
]


@pytest.mark.parametrize("formula", SPELLINGS[1:-1])
def test_every_spelling_gives_the_same_codes_and_plan(formula: str) -> None:
    reference = compile_formula(SPELLINGS[0], _cfg())
    program = compile_formula(formula, _cfg())
    assert program.instructions == reference.instructions
    assert program.plan(POINT) == reference.plan(POINT)


def test_an_explicit_robot_path_replaces_the_carried_sample() -> None:
    tail = compile_formula(SPELLINGS[-1], _cfg()).instructions[-5:]
    assert [(i["code"], i.get("position")) for i in tail] == [
        ("MOVE", "sampler"),
        ("MOVE", "cd"),
        ("ABS-CD", None),
        ("MOVE", "cd"),
        ("MOVE", "waste"),
    ]


def test_robot_stations_by_number_are_the_named_positions() -> None:
    by_number = compile_formula("R1·SP1[0.1, 0, 0.1] | CR[1, 5, 10] | ABS[10] | CR[3, 2]")
    by_name = compile_formula(
        "R1·SP1[0.1, 0, 0.1] | CR[home, waste, 10] | ABS[10] | CR[abs, sampler]"
    )
    assert by_number.instructions == by_name.instructions


def test_per_module_parameters_win_over_shared_ones() -> None:
    cfg = _cfg(
        param={
            **CONFIG["param"],
            "SP3_rate": {"default": 0.01},
            "H1_T": {"default": 120, "bound": [100, 150], "dx": 1, "var": 1},
        }
    )
    program = compile_formula(CONFIG["formula"], cfg)
    plan = program.plan({"T": 140.0, "H1_T": 125.0})
    moves = next(c for c in plan if c["method"] == "pump.parallel")["params"]["moves"]
    assert moves[2]["rate_mL_min"] == pytest.approx(0.01)
    assert next(c for c in plan if c["method"] == "heater.set")["params"]["setpoint_C"] == 125.0


def test_ratio_sets_the_flows() -> None:
    two = _plan(CONFIG["formula"])
    reagents = copy.deepcopy(CONFIG["reagent"])
    reagents[1]["ratio"] = 7
    seven = _plan(CONFIG["formula"], _cfg(reagent=reagents))
    assert two != seven
    moves = next(c for c in seven if c["method"] == "pump.parallel")["params"]["moves"]
    assert [m["rate_mL_min"] for m in moves] == pytest.approx(
        [0.15 / 11, 0.15 * 7 / 11, 0.15 * 3 / 11]
    )


# (formula, parameters to drop from CONFIG, line, column, kind, words the message must hold)
BARE_ERRORS = [
    ("R1·SP1", ("Q",), 1, 4, "param-count", ["SP1", "rate", "$SP1_rate", "$Q"]),
    ("R1 + R2", ("t_eq",), 1, 1, "param-count", ["SP1", "v_i", "$t_eq", "$time"]),
    ("R1·SP1[0.1, 0, 0.1] × H", ("T",), 1, 23, "param-count", ["H", "T", "$H1_T", "$temp"]),
    ("R1·SP1[0.1, 0, 0.1] | CR | ABS", (), 1, 23, "param-count", ["CR", "positions"]),
    ("R1·SP1[0.1, 0, 0.1] × V1", (), 1, 23, "param-count", ["V1", "open", "$V1_open"]),
    ("R4 + R1", (), 1, 1, "unknown-reagent", ["R4", "3 reagent"]),
    ("CsBr + R1", (), 1, 1, "unknown-reagent", ["CsBr"]),
    ("R2^s + R1", (), 1, 1, "structure", ["solid", "no module that doses solids"]),
    ("R2^s·SP2", (), 1, 6, "structure", ["solid"]),
    ("R1 R2", (), 1, 4, "syntax", ["'·'"]),
    ("R1 + ", (), 1, 6, "syntax", ["reagent"]),
    ("(R1 + R2", (), 1, 9, "syntax", ["')'"]),
    ("R1 + R1", (), 1, 6, "pump-conflict", ["twice"]),
    ("R1 + R2·SP1", (), 1, 9, "pump-conflict", ["twice"]),
    ("R1 × H | CR[9, cd] | ABS", (), 1, 13, "syntax", ["station number"]),
    ("R1 × H | CR[0, cd] | ABS", (), 1, 13, "syntax", ["station number"]),
    ("R1 × SP₉₉₉₉₉", (), 1, 8, "out-of-range", ["too large"]),
    ("R1 + R2 × H", (), 1, 9, "structure", ["(A + B)"]),
    ("R1 | H", (), 1, 6, "structure", ["characterization"]),
    ("R1 | CR[sampler, cd]", (), 1, 4, "nothing-to-measure", ["measurement"]),
]


@pytest.mark.parametrize(("formula", "drop", "line", "column", "kind", "words"), BARE_ERRORS)
def test_malformed_paper_forms_are_refused_with_position(
    formula: str, drop: tuple[str, ...], line: int, column: int, kind: str, words: list[str]
) -> None:
    raw = copy.deepcopy(CONFIG)
    raw.pop("formula")
    raw["experiment"] = ["HEAT_OFF"]
    for name in drop:
        raw["param"].pop(name)
    raw["param"]["X"] = {"default": 1, "bound": [0, 2], "dx": 0.5, "var": 1}  # never none
    with pytest.raises(LanguageError) as caught:
        compile_formula(formula, load_config(raw))
    err = caught.value
    assert (err.line, err.column, err.kind) == (line, column, kind), str(err)
    for word in words:
        assert word in err.message, err.message


# -- Fig. S10 --------------------------------------------------------------------------------
FIG_S10 = json.loads((EXAMPLES / "fig_s10.json").read_text(encoding="utf-8"))


def test_fig_s10_loads_with_every_field_in_effect() -> None:
    cfg = load_config(EXAMPLES / "fig_s10.json")
    space = cfg.search_space()
    assert space.names == ["temp"]  # time has the bound [20, 20]: a constant
    assert cfg.params["time"].var is False and cfg.params["time"].default == 20
    assert space.resolution[0] == pytest.approx(90 / 1e6)  # dx 0: continuous
    assert default_target(cfg) == {"metric": "max_abs_cd_at_exciton"}
    assert cfg.nreq == 0 and cfg.optimizer_name == "snobfit"
    plan = cfg.program().plan({"temp": 150.0}, include_init=True)
    methods = [c["method"] for c in plan]
    assert methods[:3] == ["pump.stop"] * 3  # init: PUMP_INIT for every reagent's pump
    assert [c["params"]["pump"] for c in plan[:3]] == ["SP1", "SP2", "SP3"]
    fills = [c["params"] for c in plan if c["method"] == "pump.fill"]
    assert [f["reagent"] for f in fills] == ["Cs-Precursor", "Pb-Precursor", "ODE"]
    moves = next(c for c in plan if c["method"] == "pump.parallel")["params"]["moves"]
    # PUMP_PARALLEL $time 0.5: 0.5 mL/min split 1:2 between the precursors for 20 s; PUMP ODE
    # 0.5 joins it as the dilution stream; each FILL draws what its pump then dispenses
    assert [(m["pump"], m["rate_mL_min"]) for m in moves] == [
        ("SP1", pytest.approx(0.5 / 3)),
        ("SP2", pytest.approx(1.0 / 3)),
        ("SP3", 0.5),
    ]
    assert [f["volume_mL"] for f in fills] == [m["volume_mL"] for m in moves]
    assert moves[2]["volume_mL"] == pytest.approx(0.5 * 20 / 60)
    assert methods[-4:] == ["robot.move", "robot.move", "spectrometer.cd", "robot.move"]
    assert [c["params"] for c in plan if c["method"] == "system.wait"] == [{"seconds": 15.0}]


def _objects_for_fig_s10() -> list[dict[str, Any]]:
    """Fig. S10's experiment written out as instruction objects."""
    cs, pb, ode = "0.5*1/3", "0.5*2/3", "0.5"
    return [
        {"code": "FILL", "pump": "SP1", "reagent": "Cs-Precursor", "volume_mL": f"{cs}*$time/60"},
        {"code": "FILL", "pump": "SP2", "reagent": "Pb-Precursor", "volume_mL": f"{pb}*$time/60"},
        {"code": "FILL", "pump": "SP3", "reagent": "ODE", "volume_mL": f"{ode}*$time/60"},
        {"code": "HEAT", "setpoint_C": "$temp"},
        {"code": "WAIT", "seconds": 15},
        {
            "code": "PUMP_PARALLEL",
            "moves": [
                {"pump": p, "volume_mL": f"{r}*$time/60", "rate_mL_min": r}
                for p, r in (("SP1", cs), ("SP2", pb), ("SP3", ode))
            ],
        },
        {"code": "MOVE", "position": "sampler"},
        {"code": "MOVE", "position": "cd"},
        {"code": "ABS-CD"},
        {"code": "MOVE", "position": "waste"},
    ]


def test_fig_s10_strings_and_objects_give_the_same_plan() -> None:
    objects = copy.deepcopy(FIG_S10)
    objects["experiment"] = _objects_for_fig_s10()
    objects["init"] = [{"code": "PUMP_INIT", "pump": f"SP{i}"} for i in (1, 2, 3)]
    strings, written = load_config(FIG_S10), load_config(objects)
    for temp in (90.0, 137.25, 180.0):
        point = {"temp": temp}
        assert strings.program().plan(point, include_init=True) == written.program().plan(
            point, include_init=True
        )


def test_ratio_of_fig_s10_changes_the_compiled_plan() -> None:
    other = copy.deepcopy(FIG_S10)
    other["reagent"][1]["ratio"] = 7
    plan = load_config(other).program().plan({"temp": 130.0})
    moves = next(c for c in plan if c["method"] == "pump.parallel")["params"]["moves"]
    assert moves[1]["rate_mL_min"] == pytest.approx(0.5 * 7 / 8)
    assert plan != load_config(FIG_S10).program().plan({"temp": 130.0})


# (experiment list, index of the offending item, its column, kind, words in the message): an
# argument's error points at the argument, a whole instruction's at its opening quote (column 5)
STRING_ERRORS = [
    (["FILL Cs-Precursor", "PUMPX 1"], 1, 6, "instruction", ["PUMPX", "known codes"]),
    (["WAIT"], 0, 6, "instruction", ["WAIT takes 1", "got 0"]),
    (["WAIT 1 2"], 0, 13, "instruction", ["WAIT takes 1", "got 2"]),
    (["FILL CsBr"], 0, 11, "unknown-reagent", ["CsBr", "Cs-Precursor"]),
    (["FILL R4"], 0, 11, "unknown-reagent", ["3 reagent"]),
    (["HEAT hot"], 0, 11, "instruction", ["HEAT", "hot"]),
    (["HEAT 400"], 0, 11, "out-of-range", ["setpoint_C"]),
    (["HEAT $tmp"], 0, 11, "undefined-variable", ["$tmp"]),
    (["FILL ODE", "PUMP ODE 0.5"], 1, 15, "instruction", ["no time", "PUMP_PARALLEL"]),
    (["FILL ODE 0.1", "FILL Pb-Precursor"], 1, 5, "structure", ["nothing after it pumps"]),
    (["PUMP_PARALLEL 20"], 0, 5, "structure", ["no reagent", "FILL"]),
    (["FILL Cs-Precursor", "PUMP_PARALLEL 20"], 1, 5, "instruction", ["total flow", "$Q"]),
    (["MOVE kitchen"], 0, 11, "out-of-range", ["kitchen", "station number"]),
    (["VALVE V1 2"], 0, 15, "instruction", ["1 (open)"]),
    (["HEAT 1e400"], 0, 11, "out-of-range", ["finite"]),
    ([""], 0, 5, "instruction", ["empty"]),
    (
        ["FILL ODE", "FILL Cs-Precursor", "PUMP_PARALLEL 20 0.5", "PUMP ODE 0.5", "PUMP ODE 0.1"],
        4,
        11,
        "pump-conflict",
        ["already joins"],
    ),
]


@pytest.mark.parametrize(("experiment", "bad", "column", "kind", "words"), STRING_ERRORS)
def test_instruction_string_errors_point_into_the_string(
    experiment: list[str], bad: int, column: int, kind: str, words: list[str]
) -> None:
    raw = copy.deepcopy(FIG_S10)
    raw["experiment"] = experiment
    text = json.dumps(raw, indent=2)
    lines = text.split("\n")
    line = next(i for i, t in enumerate(lines, 1) if t.strip() == '"experiment": [') + 1 + bad
    with pytest.raises(LanguageError) as caught:
        load_config(text)
    err = caught.value
    assert (err.kind, err.line, err.column) == (kind, line, column), str(err)
    for word in words:
        assert word in err.message, err.message


def test_bound_a_a_holds_a_var_1_parameter_and_dx_0_is_continuous() -> None:
    raw = copy.deepcopy(FIG_S10)
    raw["param"]["temp"]["bound"] = [130, 130]
    with pytest.raises(LanguageError, match="nothing to optimise"):
        load_config(raw)  # the only searched parameter is now held
    raw["param"]["time"] = {"default": 20, "bound": [10, 30], "dx": 0, "var": 1}
    cfg = load_config(raw)
    assert cfg.search_space().names == ["time"]
    assert cfg.params["temp"].var is False


@pytest.mark.parametrize(
    ("metric", "target"),
    [
        (["CD", ["wavelength", "peak"]], {"metric": "max_abs_cd_at_exciton"}),
        (["PL", ["intensity", "peak"]], {"metric": "max_pl_intensity"}),
        (
            ["PL", ["wavelength", 520]],
            {"metric": "target_wavelength", "source": "pl", "wavelength_nm": 520.0},
        ),  # fmt: skip
        (
            ["ABS", ["wavelength", 505.5]],
            {"metric": "target_wavelength", "source": "absorbance", "wavelength_nm": 505.5},
        ),  # fmt: skip
    ],
)
def test_paper_metric_array_maps_onto_a_target(metric: list[Any], target: dict[str, Any]) -> None:
    raw = copy.deepcopy(FIG_S10)
    raw["metric"] = metric
    assert default_target(load_config(raw)) == target


@pytest.mark.parametrize(
    "metric", [["CD", ["colour", "peak"]], ["CD"], ["PL", ["wavelength", -5]], ["CD", [[1], 2]]]
)
def test_unknown_metric_forms_are_refused_listing_the_known_ones(metric: list[Any]) -> None:
    raw = copy.deepcopy(FIG_S10)
    raw["metric"] = metric
    with pytest.raises(LanguageError) as caught:
        load_config(raw)
    assert caught.value.message.startswith("metric:")
