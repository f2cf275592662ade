"""Golden tests of the formula language: operators, precedence, spellings, $variables."""

from __future__ import annotations

import pytest

from maosic.language import LanguageError, compile_formula
from maosic.language.expr import parse_expression
from maosic.language.lexer import tokenize
from maosic.language.parser import parse_formula
from maosic.language.tree import Characterize, Fusion, Group, React, Transfer

P1 = "R1·SP1[0.1, 0, 0.05]"
P2 = "R2·SP2[0.2, 0, 0.1]"


def codes(formula: str) -> list[str]:
    return [i["code"] for i in compile_formula(formula).instructions]


# ---------------------------------------------------------------- each operator


def test_transfer_compiles_to_init_fill_pump() -> None:
    assert compile_formula(P1).instructions == [
        {"code": "PUMP_INIT", "pump": "SP1"},
        {"code": "FILL", "pump": "SP1", "reagent": "R1", "volume_mL": 0.1},
        {"code": "PUMP", "pump": "SP1", "volume_mL": 0.1, "rate_mL_min": 0.05},
    ]


def test_fusion_runs_pumps_in_parallel() -> None:
    inst = compile_formula(f"{P1} + {P2}").instructions
    assert [i["code"] for i in inst] == [
        "PUMP_INIT", "PUMP_INIT", "FILL", "FILL", "PUMP_PARALLEL",
    ]  # fmt: skip
    assert inst[-1]["moves"] == [
        {"pump": "SP1", "volume_mL": 0.1, "rate_mL_min": 0.05},
        {"pump": "SP2", "volume_mL": 0.2, "rate_mL_min": 0.1},
    ]


def test_react_heats_before_infusion_and_holds_after() -> None:
    inst = compile_formula(f"({P1} + {P2}) × H[130, 5, 20]").instructions
    assert [i["code"] for i in inst] == [
        "PUMP_INIT", "PUMP_INIT", "FILL", "FILL", "HEAT", "PUMP_PARALLEL", "WAIT",
    ]  # fmt: skip
    assert inst[4] == {
        "code": "HEAT", "module": "H1", "setpoint_C": 130, "ramp_C_min": 5,
        "wait_stable": True, "timeout_s": 1800,
    }  # fmt: skip
    assert inst[6] == {"code": "WAIT", "seconds": 20}


def test_heater_defaults_fill_optional_parameters() -> None:
    heat = compile_formula(f"{P1} × H[90]").instructions[2]
    assert heat["setpoint_C"] == 90 and heat["ramp_C_min"] == 10
    assert codes(f"{P1} × H[90]")[-1] == "PUMP"  # t_H = 0: no WAIT


def test_characterization_steps_in_order() -> None:
    inst = compile_formula(f"{P1} | CR[sampler, cd, 5] | ABS-CD[200] | CR[cd, waste]")
    tail = inst.instructions[3:]
    assert tail == [
        {"code": "MOVE", "module": "CR1", "position": "sampler"},
        {"code": "WAIT", "seconds": 5},
        {"code": "MOVE", "module": "CR1", "position": "cd"},
        {"code": "ABS-CD", "module": "SPEC1", "integration_ms": 200},
        {"code": "MOVE", "module": "CR1", "position": "cd"},
        {"code": "MOVE", "module": "CR1", "position": "waste"},
    ]


@pytest.mark.parametrize(
    ("symbol", "code", "extra"),
    [
        ("ABS[50]", "ABS", {"integration_ms": 50}),
        ("CD[50]", "CD", {"integration_ms": 50}),
        ("PL[50, 350]", "PL", {"integration_ms": 50, "excitation_nm": 350}),
        ("PL", "PL", {"integration_ms": 100, "excitation_nm": 300}),
    ],
)
def test_measurements(symbol: str, code: str, extra: dict[str, float]) -> None:
    last = [i for i in compile_formula(f"{P1} | {symbol}").instructions if i["code"] == code][-1]
    module = "PL1" if code == "PL" else "SPEC1"
    assert last == {"code": code, "module": module, **extra}


def test_valve_as_environment_and_step() -> None:
    inst = compile_formula(f"{P1} × V2[1] | V2[0] | ABS[10]").instructions
    assert {"code": "VALVE", "valve": "V2", "open": True} == inst[2]
    assert {"code": "VALVE", "valve": "V2", "open": False} == inst[4]


def test_times_repeats_injections_with_waits() -> None:
    inst = compile_formula("R1·SP1[0.1, 30, 0.5, 3]").instructions
    assert inst[1]["volume_mL"] == pytest.approx(0.3)  # fill for all three injections
    assert [i["code"] for i in inst[2:]] == ["PUMP", "WAIT"] * 3


def test_reagent_vector_sets_fill_volume() -> None:
    inst = compile_formula("R1[1, 0.4]·SP1[0.1, 0, 0.05]").instructions
    assert inst[1]["volume_mL"] == 0.4


def test_named_and_quoted_reagents() -> None:
    inst = compile_formula("Cs-oleate·SP1[0.1, 0, 1] + 'lead bromide'·SP2[0.1, 0, 1]")
    fills = [i["reagent"] for i in inst.instructions if i["code"] == "FILL"]
    assert fills == ["Cs-oleate", "lead bromide"]


# ---------------------------------------------------------------- precedence


def test_transfer_binds_tighter_than_react_and_fusion() -> None:
    tree = parse_formula(f"({P1} + {P2}) × H[100] | ABS[10]")
    assert isinstance(tree, Characterize)
    assert isinstance(tree.inner, React)
    assert isinstance(tree.inner.inner, Group)
    fusion = tree.inner.inner.inner
    assert isinstance(fusion, Fusion) and all(isinstance(p, Transfer) for p in fusion.parts)


def test_react_binds_tighter_than_fusion() -> None:
    tree = parse_formula(f"{P1} + {P2} × H[100]")
    assert isinstance(tree, Fusion)
    assert isinstance(tree.parts[1], React)
    with pytest.raises(LanguageError) as err:
        compile_formula(f"{P1} + {P2} × H[100]")
    assert err.value.kind == "structure" and err.value.column == 44


def test_pipe_binds_loosest() -> None:
    tree = parse_formula(f"{P1} × H[100] | ABS[10] | CD[10]")
    assert isinstance(tree, Characterize) and len(tree.steps) == 2
    assert isinstance(tree.inner, React)


def test_single_stream_may_be_heated_without_parentheses() -> None:
    assert codes(f"{P1} × H[100]") == ["PUMP_INIT", "FILL", "HEAT", "PUMP"]


def test_environments_chain_left_to_right() -> None:
    inst = compile_formula(f"({P1}) × H[100] × V1[1]").instructions
    assert [i["code"] for i in inst] == ["PUMP_INIT", "FILL", "HEAT", "VALVE", "PUMP"]


def test_nested_parentheses_flatten() -> None:
    a = compile_formula(f"(({P1}) + ({P2})) × H[100]").instructions
    b = compile_formula(f"({P1} + {P2}) × H[100]").instructions
    assert a == b


# ---------------------------------------------------------------- spellings


@pytest.mark.parametrize(
    "formula",
    [
        "(R1·SP1[0.1, 0, 0.05] + R2·SP2[0.2, 0, 0.1]) × H[130] | ABS-CD[100]",
        "(R1*SP1[0.1, 0, 0.05] + R2*SP2[0.2, 0, 0.1]) x H[130] | ABS-CD[100]",
        "(R1.SP1[0.1, 0, 0.05] + R2.SP2[0.2, 0, 0.1]) x H[130] | ABS-CD[100]",
        "(R1⋅SP1[0.1,0,0.05]+R2⋅SP2[0.2,0,0.1])×H[130]|ABS-CD[100]",
        "(R_1·SP_1[0.1, 0, 0.05] + R_2·SP_2[0.2, 0, 0.1]) × H1[130] | ABS-CD[100]",
        "(R1·SP1[0.1, 0, 0.05]   # Cs stream\n + R2·SP2[0.2, 0, 0.1])\n × H[130]\n | ABS-CD[100]",
    ],
)
def test_ascii_and_unicode_spellings_compile_identically(formula: str) -> None:
    reference = "(R1·SP1[0.1, 0, 0.05] + R2·SP2[0.2, 0, 0.1]) × H[130] | ABS-CD[100]"
    assert compile_formula(formula).instructions == compile_formula(reference).instructions


def test_star_inside_brackets_multiplies() -> None:
    inst = compile_formula("R1*SP1[0.1*2, 0, 0.05*2]").instructions
    assert inst[-1]["volume_mL"] == pytest.approx(0.2)
    assert inst[-1]["rate_mL_min"] == pytest.approx(0.1)


def test_unicode_minus_is_minus() -> None:
    assert parse_expression("$a − 1").text() == "$a-1"


# ---------------------------------------------------------------- $variables and expressions


def test_variables_are_collected_and_kept_symbolic() -> None:
    prog = compile_formula("R1·SP1[$v, 0, $C*0.15/3.6] × H[$T]")
    assert prog.variables == {"v", "C", "T"}
    pump = prog.instructions[-1]
    assert pump["rate_mL_min"] == "$C*0.15/3.6" and pump["volume_mL"] == "$v"
    assert prog.instructions[2]["setpoint_C"] == "$T"


def test_constant_expressions_fold_to_numbers() -> None:
    inst = compile_formula("R1·SP1[(1+1)/4, 0, 2*3/60]").instructions
    assert inst[-1]["volume_mL"] == 0.5 and inst[-1]["rate_mL_min"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("text", "canonical", "value"),
    [
        ("$a + $b * 2", "$a+$b*2", 8.0),
        ("($a + $b) * 2", "($a+$b)*2", 10.0),
        ("$a - ($b - 1)", "$a-($b-1)", 0.0),
        ("$a / ($b / 2)", "$a/($b/2)", 4.0 / 3.0),
        ("-$a * 2", "-$a*2", -4.0),
        ("-($a + 1)", "-($a+1)", -3.0),
        ("+$a", "$a", 2.0),
        ("1.5e1 * $a", "15*$a", 30.0),
    ],
)
def test_expression_precedence_and_canonical_text(text: str, canonical: str, value: float) -> None:
    expr = parse_expression(text)
    assert expr.text() == canonical
    assert expr.evaluate({"a": 2.0, "b": 3.0}) == pytest.approx(value)
    assert parse_expression(canonical).text() == canonical  # canonical text is a fixed point


def test_tokens_keep_offsets() -> None:
    toks = tokenize("R1 · SP1[$T]")
    assert [(t.kind, t.offset) for t in toks] == [
        ("NAME", 0), ("DOT", 3), ("NAME", 5), ("[", 8), ("VAR", 9), ("]", 11), ("EOF", 12),
    ]  # fmt: skip


def test_a_lab_adds_a_module_without_touching_the_parser() -> None:
    from maosic.language.symbols import (
        MODULES,
        ModuleSpec,
        ParamSpec,
        register_module,
        unregister_module,
    )

    uv = ModuleSpec(
        symbol="UV",
        kind="spectrometer",
        meaning="second absorbance spectrometer",
        roles=frozenset({"characterization"}),
        params=(ParamSpec("I_p", "ms", "integration time", "integration_ms", 1, 500),),
        emit="measure",
        codes=("ABS",),
        methods=("spectrometer.absorbance",),
        daemon_id="UV{n}",
    )
    with pytest.raises(LanguageError):
        compile_formula("R1·SP1[0.1, 0, 0.05] | UV2[50]")  # unknown before registration
    register_module(uv)
    try:
        prog = compile_formula("R1·SP1[0.1, 0, 0.05] | UV2[50]")
        assert prog.instructions[-1] == {"code": "ABS", "module": "UV2", "integration_ms": 50}
        assert "UV2" in prog.modules_used()
        with pytest.raises(LanguageError) as info:
            compile_formula("R1·SP1[0.1, 0, 0.05] | UV2[900]")
        assert "[1, 500]" in info.value.message
    finally:
        unregister_module("UV")
    with pytest.raises(ValueError):
        register_module(MODULES["H"])  # symbols are unique


def test_module_table_codes_and_methods_agree() -> None:
    from maosic.language.instructions import INSTRUCTIONS
    from maosic.language.symbols import MODULES

    for spec in MODULES.values():
        assert set(spec.methods) == {INSTRUCTIONS[c].method for c in spec.codes}, spec.symbol
        assert spec.required_count <= len(spec.params)
