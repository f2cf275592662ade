"""Invalid formulas: each raises LanguageError with the exact line, column and kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from maosic.language import LanguageError, compile_formula, load_config
from maosic.language.errors import ERROR_KINDS

P = "R1·SP1[0.1, 0, 0.05]"  # 20 characters

# (formula, line, column, kind, a word the message must contain)
INVALID: list[tuple[str, int, int, str, str]] = [
    ("", 1, 1, "syntax", "empty"),
    ("   \n  ", 1, 1, "syntax", "empty"),
    ("R1 R2", 1, 4, "syntax", "'·'"),
    ("R1·", 1, 4, "syntax", "pump"),
    ("R1·SP1[0.1, 0, 0.05", 1, 20, "syntax", "']'"),
    ("R1·SP1[0.1, 0 0.05]", 1, 15, "syntax", "','"),
    ("R1·SP1[0.1,, 0.05]", 1, 12, "syntax", "value"),
    ("R1·SP1[]", 1, 8, "param-count", "got 0"),
    ("R1·SP1[0.1, 0, 0.05, 1, 2]", 1, 25, "param-count", "got 5"),
    ("R1·XY1[0.1, 0, 0.05]", 1, 4, "unknown-symbol", "XY1"),
    ("R1·sp1[0.1, 0, 0.05]", 1, 4, "unknown-symbol", "case-sensitive"),
    ("R1·H[130]", 1, 4, "structure", "cannot be used here"),
    ("SP1·SP2[0.1, 0, 0.05]", 1, 1, "structure", "not a reagent"),
    (P + " × SP2[0.1, 0, 1]", 1, 24, "structure", "environment"),
    (P + " × H[300]", 1, 26, "out-of-range", "[20, 250]"),
    (P + " × H[130, 0]", 1, 31, "out-of-range", "dT/dt"),
    ("R1·SP1[60, 0, 0.05]", 1, 8, "out-of-range", "v_i"),
    (P[:-1] + ", 1.5]", 1, 22, "out-of-range", "whole number"),
    (P + " + R2·SP1[0.1, 0, 0.05]", 1, 27, "pump-conflict", "twice"),
    ("(" + P + " + R2·SP_1[0.1, 0, 0.05]) × H[100]", 1, 28, "pump-conflict", "column 5"),
    (P + " × H[100] × H1[120]", 1, 33, "pump-conflict", "twice"),
    ("| ABS-CD[100]", 1, 1, "nothing-to-measure", "product"),
    ("ABS-CD[100]", 1, 1, "nothing-to-measure", "after '|'"),
    (P + " | CR[sampler, cd]", 1, 22, "nothing-to-measure", "no measurement"),
    (P + " | CR[sampler, kitchen] | ABS[100]", 1, 36, "out-of-range", "kitchen"),
    (P + " | CR[9, cd] | ABS[100]", 1, 27, "syntax", "station number"),
    (P + " | H[100]", 1, 24, "structure", "characterization"),
    (P + " | ABS-CD[0]", 1, 31, "out-of-range", "I_p"),
    ("R1·SP1[T, 0, 0.05]", 1, 8, "syntax", "$T"),
    ("R1·SP1[$, 0, 0.05]", 1, 8, "syntax", "variable name"),
    ("R1·SP1[0.1 ; 0, 0.05]", 1, 12, "syntax", "';'"),
    (P + " + R2·SP2[0.1, 0, 0.05] × H[130]", 1, 45, "structure", "(A + B)"),
    (P + " +", 1, 23, "syntax", "reagent"),
    (P + " R2·SP2[0.1, 0, 0.05]", 1, 22, "syntax", "operator"),
    ("(" + P, 1, 22, "syntax", "column 1"),
    (P + ")", 1, 21, "syntax", "no matching"),
    ("R1[1, 0.05]·SP1[0.1, 0, 0.05]", 1, 7, "out-of-range", "provides"),
    ("R1[2, 0.4]·SP1[0.1, 0, 0.05]", 1, 4, "out-of-range", "index 1"),
    ("R1[1]·SP1[0.1, 0, 0.05]", 1, 5, "param-count", "[i, v (mL)]"),
    ("R2^s[2, 0.1]·SP1[0.1, 0, 0.05]", 1, 14, "structure", "solid"),
    ("R2^q·SP1[0.1, 0, 0.05]", 1, 4, "syntax", "'s'"),
    (P + "\n  × H[130, 10, 20]\n  | ABS-CD[100, 5]", 3, 17, "param-count", "got 2"),
    (P + " | ABS[100] × H[100]", 1, 33, "syntax", "operator"),
    ("(" + P + " | ABS[100]) + R2·SP2[0.1, 0, 0.05]", 1, 23, "structure", "last"),
    (P + " + R2·SP2[0.1, 5, 0.05]", 1, 36, "structure", "t_i"),
    (P[:-1] + ", 2] + R2·SP2[0.1, 0, 0.05]", 1, 46, "structure", "injections"),
    ("R1·SP1[1/0, 0, 0.05]", 1, 9, "syntax", "division by zero"),
    (P + " × V1[2]", 1, 27, "out-of-range", "0 or 1"),
    (P + " × H[$T, 10, 0] × x", 1, 39, "syntax", "environment"),
    (P + " | PL[100, 900]", 1, 32, "out-of-range", "lambda_ex"),
    ("R1 · SP1[0.1, 0, 0.05] @", 1, 24, "syntax", "'@'"),
    ("R1·SP1[0.1, 0, (0.05]", 1, 21, "syntax", "')'"),
    ("R1·SP1[0.1, 0, 0.05*]", 1, 21, "syntax", "number"),
    ('"Cs-oleate·SP1[0.1, 0, 0.05]', 1, 1, "syntax", "unterminated"),
    (P + " × H[$T, 10, $]", 1, 34, "syntax", "variable name"),
    ("R1·SP1[0.1, 0, $C.5]", 1, 18, "syntax", "','"),
    ("R1·SP1[0.1,\n 0,\n\t0.05, 1, 1]", 3, 11, "param-count", "got 5"),
]


@pytest.mark.parametrize(("formula", "line", "column", "kind", "word"), INVALID)
def test_invalid_formula_position(formula: str, line: int, column: int, kind: str, word: str):
    with pytest.raises(LanguageError) as info:
        compile_formula(formula)
    err = info.value
    assert (err.line, err.column, err.kind) == (line, column, kind), str(err)
    assert word in err.message
    assert err.source == formula


def test_at_least_thirty_invalid_inputs() -> None:
    assert len(INVALID) >= 30
    assert {k for _, _, _, k, _ in INVALID} >= {
        "syntax", "unknown-symbol", "param-count", "out-of-range", "pump-conflict",
        "nothing-to-measure", "structure",
    }  # fmt: skip


def test_str_shows_line_and_caret_under_the_column() -> None:
    with pytest.raises(LanguageError) as info:
        compile_formula("R1·SP1[0.1, 0, 0.05]\n  × H[999]")
    text = str(info.value).split("\n")
    assert text[0].startswith("formula: line 2, column 7:")
    assert text[1] == "    × H[999]"
    assert text[2] == "  " + " " * 6 + "^"


def test_unknown_reagent_and_undefined_variable_need_a_configuration() -> None:
    cfg = load_config(Path("examples/cspbbr3.json"))
    with pytest.raises(LanguageError) as info:
        compile_formula("R4·SP1[0.1, 0, 0.05]", cfg)
    assert (info.value.kind, info.value.column) == ("unknown-reagent", 1)
    with pytest.raises(LanguageError) as info:
        compile_formula("CsBr·SP1[0.1, 0, 0.05]", cfg)
    assert (info.value.kind, info.value.column) == ("unknown-reagent", 1)
    assert "Cs-oleate" in info.value.message  # lists what the reaction does have
    with pytest.raises(LanguageError) as info:
        compile_formula("R1·SP1[0.1, 0, 0.05] × H[$Temp]", cfg)
    assert (info.value.kind, info.value.column) == ("undefined-variable", 26)
    # Without a configuration the same formulas are fine.
    assert compile_formula("R1·SP1[0.1, 0, 0.05] × H[$Temp]").variables == {"Temp"}


def test_error_kinds_are_the_documented_set() -> None:
    with pytest.raises(ValueError):
        LanguageError("x", kind="not-a-kind")
    assert "syntax" in ERROR_KINDS and len(ERROR_KINDS) == 12


def test_non_string_formula_is_a_language_error() -> None:
    with pytest.raises(LanguageError):
        compile_formula(42)  # type: ignore[arg-type]
