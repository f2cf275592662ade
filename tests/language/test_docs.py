"""docs/language.md stays in sync with the tables in code."""

from __future__ import annotations

from pathlib import Path

from maosic.language.errors import ERROR_KINDS
from maosic.language.instructions import INSTRUCTIONS
from maosic.language.symbols import MODULES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end != -1 else len(DOC)]


def test_every_error_kind_is_in_the_catalogue() -> None:
    catalogue = _section("### Error catalogue")
    missing = [k for k in ERROR_KINDS if f"| `{k}` |" not in catalogue]
    assert not missing


def test_every_instruction_code_is_documented_with_its_method() -> None:
    table = _section("## Instruction codes")
    for code, spec in INSTRUCTIONS.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{code}` |")), "")
        assert spec.method in row, code


def test_every_module_symbol_is_documented() -> None:
    table = _section("## Module symbol table")
    for symbol, spec in MODULES.items():
        row = next((line for line in table.splitlines() if line.startswith(f"| `{symbol}` |")), "")
        assert spec.kind in row and all(m in row for m in spec.methods if m != "system.wait"), (
            symbol
        )


def test_grammar_and_precedence_are_written_down() -> None:
    assert "```ebnf" in DOC and "### Precedence and why" in DOC


def test_every_instruction_string_form_is_documented() -> None:
    from maosic.language.shorthand import usage

    table = _section("## Instruction strings")
    for code, form in usage().items():
        assert f"`{form}`" in table or f"`{form.replace('|', chr(92) + '|')}`" in table, code
