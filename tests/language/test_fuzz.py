"""Property-based tests: whatever the input, only LanguageError escapes."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maosic.language import LanguageError, compile_formula, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALID = [
    (EXAMPLES / "cspbbr3.formula").read_text(encoding="utf-8"),
    (EXAMPLES / "cs3cu2i5.formula").read_text(encoding="utf-8"),
    "(R1·SP1[0.1, 30, 0.05, 2] + R2^s[2, 0.1]·SP2[0.1, 30, 0.1, 2]) x H[130, 5, 20] | ABS[10]",
    "R1[1, 0.4]*SP_1[$v, 0, -(-$r)/2] × V1[1] | CR[sampler, abs, 3] | PL[100, 350] | V1[0]",
]
CONFIG_TEXT = (EXAMPLES / "cspbbr3.json").read_text(encoding="utf-8")

ALPHABET = st.sampled_from(
    list("RSPHCABDLVx0123456789.,[]()+-*/|^$_ \n·×⋅−'\"#@;s")
    + ["SP", "ABS-CD", "CR", "H", "R1", "$T", "sampler", "cd"]
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compile_or_language_error(text: str) -> None:
    try:
        program = compile_formula(text)
    except LanguageError as err:
        assert err.line >= 1 and err.column >= 1 and err.message
        assert err.line <= text.count("\n") + 1
        str(err)  # the caret rendering must not fail either
        return
    json.dumps(program.instructions)
    try:
        program.plan({name: 1.0 for name in program.variables})
    except LanguageError:
        pass


@SETTINGS
@given(st.text(max_size=80))
def test_random_text(text: str) -> None:
    _compile_or_language_error(text)


@SETTINGS
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_random_formula_like_text(text: str) -> None:
    _compile_or_language_error(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "swap"]))
        piece = draw(ALPHABET)
        if action == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "replace":
            text = text[:pos] + piece + text[pos + 1 :]
        elif pos + 1 < len(text):
            text = text[:pos] + text[pos + 1] + text[pos] + text[pos + 2 :]
    return text


@SETTINGS
@given(mutated())
def test_mutations_of_valid_formulas(text: str) -> None:
    _compile_or_language_error(text)


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    text = CONFIG_TEXT
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(text)))
        piece = draw(st.sampled_from(list('{}[]",:0123456789-.$abcT ') + ["null", "true"]))
        if draw(st.booleans()):
            text = text[:pos] + piece + text[pos:]
        else:
            text = text[:pos] + text[pos + 1 :]
    return text


@settings(max_examples=150, deadline=None)
@given(mutated_config())
def test_mutations_of_the_example_configuration(text: str) -> None:
    try:
        cfg = load_config(text)
    except LanguageError as err:
        assert err.line >= 1 and err.column >= 1 and err.message
        return
    cfg.search_space()
    json.dumps(cfg.to_dict())


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["param", "reagent", "experiment", "init", "metric", "max_expts"]), JSONISH)
def test_random_values_in_config_fields(field: str, value: object) -> None:
    data = json.loads(CONFIG_TEXT)
    data[field] = value
    try:
        load_config(data)
    except LanguageError as err:
        assert err.line >= 1 and err.column >= 1


def test_deep_nesting_and_long_expressions_are_language_errors() -> None:
    for text in [
        "(" * 5000 + "R1·SP1[1, 0, 1]" + ")" * 5000,
        "R1·SP1[" + "(" * 5000 + "1" + ")" * 5000 + ", 0, 1]",
        "R1·SP1[" + "-" * 5000 + "1, 0, 1]",
        "R1·SP1[" + "+".join(["$a"] * 5000) + ", 0, 1]",
    ]:
        try:
            compile_formula(text)
        except LanguageError as err:
            assert "deeply" in err.message or "too long" in err.message
        else:
            raise AssertionError("accepted an absurdly nested formula")
    ok = compile_formula("R1·SP1[" + "+".join(["$a"] * 50) + ", 0, ((((1))))]")
    assert ok.plan({"a": 0.001})[-1]["params"]["volume_mL"] == 0.05
