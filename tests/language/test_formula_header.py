"""A formula file carries its own search space and constants in header lines (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maosic.language import LanguageError, compile_formula, load_config
from maosic.language.config import formula_config
from maosic.language.header import formula_space

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_header_lines_give_the_space_and_constants() -> None:
    text = (
        "# Chiral CsPbBr3: an ordinary comment is ignored\n"
        "# vary T from 90 to 180 step 0.5     °C, reactor temperature\n"
        "#vary $C from .2 to 1.2 step 0.01\n"
        "# VARY t_eq from 120 to 120\n"
        "# fix Q = 0.15   mL/min\n"
        "# vary x from 0 to 2\n"
        "# vary y from -1 to 1 step 0\n"
        "R1·SP1[$Q, 0, $Q] × H[$T]\n"
    )
    assert formula_space(text) == {
        "T": {"bound": [90, 180], "dx": 0.5},
        "C": {"bound": [0.2, 1.2], "dx": 0.01},
        "t_eq": {"fixed": 120},  # equal bounds hold it, as on the web form
        "Q": {"fixed": 0.15},
        "x": {"bound": [0, 2]},
        "y": {"bound": [-1, 1], "dx": 0},
    }
    assert formula_space("R1·SP1[0.1, 0, 0.1]") == {}


@pytest.mark.parametrize("name", ["cspbbr3.formula", "cs3cu2i5.formula"])
def test_example_formula_files_compile_from_their_own_text(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    space = formula_space(text, where=name)
    cfg = load_config(formula_config(text, space, name))
    program = compile_formula(text, cfg)
    assert program.plan(cfg.defaults())
    assert set(program.variables) <= set(space)  # every $variable has a row


@pytest.mark.parametrize(
    ("line", "column", "kind", "words"),
    [
        ("# vary T 90 180", 3, "syntax", "# vary NAME from LOW to HIGH"),
        ("# vary T from 90 to", 3, "syntax", "from LOW to HIGH"),
        ("# fix Q 0.15", 3, "syntax", "# fix NAME = VALUE"),
        ("# fix Q = much", 3, "syntax", "fix NAME = VALUE"),
        ("# vary T from 180 to 90", 15, "out-of-range", "above the upper bound"),
        ("# vary T from 90 to 180 step 100", 30, "out-of-range", "step"),
        ("# vary T from 90 to 180 step -1", 30, "out-of-range", "step"),
        ("# vary T from 1e999 to 180", 8, "out-of-range", "finite"),
    ],
)
def test_malformed_header_lines_are_refused_with_position(
    line: str, column: int, kind: str, words: str
) -> None:
    text = "# a note\n" + line + "\nR1·SP1[0.1, 0, 0.1] × H[$T]\n"
    with pytest.raises(LanguageError) as caught:
        formula_space(text, where="upload.formula")
    err = caught.value
    assert (err.line, err.column, err.kind) == (2, column, kind), str(err)
    assert words in err.message and err.where == "upload.formula"


def test_a_name_given_twice_is_refused() -> None:
    text = "# vary T from 90 to 180\n# fix T = 100\nH[$T]"
    with pytest.raises(LanguageError, match="twice") as caught:
        formula_space(text)
    assert (caught.value.line, caught.value.column) == (2, 7)
