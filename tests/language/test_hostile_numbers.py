"""Hostile numbers in formulas and configurations (issue 17, item 5).

Each one used to end in a Python traceback (int()'s 4300-digit limit, OverflowError on inf, a
repr() of a 5000-digit int): now a LanguageError naming line and column, like any other typo.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from maosic.language import LanguageError, compile_formula, load_config
from maosic.language.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
P = "R1·SP1[0.1, 0, 0.05]"  # 20 characters
DIGITS = "1" * 5000

# (formula, line, column, a word the message must contain)
HOSTILE: list[tuple[str, int, int, str]] = [
    ("R" + DIGITS + "·SP1[0.1, 0, 0.05]", 1, 2, "too large"),
    ("R_" + "0" * 5000 + "1·SP1[0.1, 0, 0.05]", 1, 3, "too large"),
    ("R1·SP" + DIGITS + "[0.1, 0, 0.05]", 1, 6, "too large"),
    (P + " × H" + DIGITS + "[130, 10, 20]", 1, 25, "too large"),
    ("R1·SP10000[0.1, 0, 0.05]", 1, 6, "9999"),
    ("R1[" + DIGITS + ", 0.1]·SP1[0.1, 0, 0.05]", 1, 4, "too long"),
    ("R[" + DIGITS + ", 0.1]·SP1[0.1, 0, 0.05]", 1, 3, "too long"),
    ("R[1e400, 0.1]·SP1[0.1, 0, 0.05]", 1, 3, "finite"),
    ("R[123456, 0.1]·SP1[0.1, 0, 0.05]", 1, 3, "9999"),
    ("R1·SP1[0.1, 0, 0.05, 1e400]", 1, 22, "finite"),
    ("R1·SP1[0.1, 0, 0.05, " + "9" * 400 + "]", 1, 22, "too long"),
    ("R1·SP1[1e400, 0, 0.05]", 1, 8, "finite"),
    ("R1·SP1[0.1, 0, -1e400]", 1, 17, "finite"),
    ("R1·SP1[0.1, 0, 1e300*1e300]", 1, 21, "overflows"),
    (P + " × H[1e300*1e300-1e300*1e300, 10, 20]", 1, 31, "overflows"),
    (P + " | ABS-CD[" + DIGITS + "]", 1, 31, "too long"),
    ("R1·SP1[0.1, 0, 0.05]\n× H[130, 10, 20]\n| ABS-CD[1e999]", 3, 10, "finite"),
]


@pytest.mark.parametrize(
    ("formula", "line", "column", "word"), HOSTILE, ids=[str(i) for i in range(len(HOSTILE))]
)
def test_hostile_number_is_a_positioned_language_error(
    formula: str, line: int, column: int, word: str
) -> None:
    with pytest.raises(LanguageError) as info:
        compile_formula(formula)
    err = info.value
    assert (err.line, err.column, err.kind) == (line, column, "out-of-range"), str(err)
    assert word in err.message
    assert len(err.message) < 200  # the 5000 digits are not echoed back
    assert len(str(err)) < 600  # nor is the whole source line under the caret


def test_error_text_of_a_huge_line_is_a_window_around_the_caret() -> None:
    formula = "R1·SP1[0.1, 0, 0.05] × H[1e400, 10, 20] + " + "R2·SP2[0.1, 0, 0.05] + " * 300
    with pytest.raises(LanguageError) as info:
        compile_formula(formula)
    _, shown, caret = str(info.value).split("\n")
    assert len(shown) < 120
    assert shown[caret.index("^") :].startswith("1e400")


def test_overflow_at_plan_time_names_the_operator() -> None:
    formula = P + " × H[$T*1e300*1e300, 10, 20]"
    program = compile_formula(formula)
    with pytest.raises(LanguageError) as info:
        program.plan({"T": 130})
    assert info.value.kind == "out-of-range" and "overflows" in info.value.message
    assert info.value.column == formula.rindex("*") + 1  # the second '*' overflows


@pytest.mark.parametrize(
    "value", [10**400, 10**5000, float("inf"), float("nan")], ids=["e400", "e5000", "inf", "nan"]
)
def test_non_finite_or_huge_binding_is_refused(value: Any) -> None:
    program = compile_formula(P + " × H[$T, 10, 20]")
    with pytest.raises(LanguageError) as info:
        program.plan({"T": value})
    assert info.value.kind == "out-of-range" and "finite" in info.value.message
    assert len(info.value.message) < 200


def _config_text() -> str:
    return (EXAMPLES / "cspbbr3.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("literal", "word"),
    [(DIGITS, "64 bits"), ("9" * 25, "64 bits"), ("1e400", "finite"), ("-1e999", "finite")],
    ids=["5000-digits", "25-digits", "1e400", "-1e999"],
)
def test_config_text_with_hostile_number(literal: str, word: str) -> None:
    text = _config_text()
    anchor = '"ramp_C_min": 10'
    assert anchor in text
    text = text.replace(anchor, '"ramp_C_min": ' + literal, 1)
    at = text.index(literal)
    with pytest.raises(LanguageError) as info:
        load_config(text)
    err = info.value
    assert word in err.message and len(err.message) < 200
    assert err.line == text.count("\n", 0, at) + 1
    assert err.column == at - text.rfind("\n", 0, at)


@pytest.mark.parametrize("value", [10**400, float("inf")], ids=["e400", "inf"])
def test_config_dict_with_hostile_experiment_number(value: Any) -> None:
    data: dict[str, Any] = json.loads(_config_text())
    step = next(s for s in data["experiment"] if "ramp_C_min" in s)
    step["ramp_C_min"] = value
    with pytest.raises(LanguageError):
        load_config(data)


def test_cli_reports_5000_digit_reagent_index_as_bad_input() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["R" + DIGITS + "·SP1[0.1, 0, 0.05]"], out=out, err=err)
    assert code == 2, err.getvalue()
    assert "line 1, column 2" in err.getvalue()
    assert len(err.getvalue()) < 600


def test_ordinary_numbers_still_compile() -> None:
    program = compile_formula("R_9999·SP9999[0.1, 0, 0.05] + R[12, 1e1]·SP2[1e-3, 0, 5e-2]")
    assert program.instructions
