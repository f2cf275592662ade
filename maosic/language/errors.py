"""The one error type of the instruction language.

Every malformed formula, instruction list or reaction configuration raises ``LanguageError``
carrying the 1-based line and column of the offending text, a message a chemist can act on, the
source text it refers to, and a short machine-readable ``kind`` (see docs/language.md, "Error
catalogue").  Callers never see ``IndexError``/``KeyError`` from inside the language package.
"""

from __future__ import annotations

# The kinds listed in the error catalogue of docs/language.md; tests check they stay in sync.
ERROR_KINDS: frozenset[str] = frozenset(
    {
        "syntax",  # the text does not follow the grammar
        "unknown-symbol",  # a module or reagent symbol the table / configuration does not know
        "param-count",  # wrong number of entries in a parameter vector
        "out-of-range",  # a value outside a module's range or a parameter's bound
        "pump-conflict",  # one pump (or other module) used twice at the same time
        "unknown-reagent",  # a reagent that is not in the reaction's reagent list
        "nothing-to-measure",  # a characterization with no product in front of it
        "undefined-variable",  # a $variable the configuration does not define
        "missing-binding",  # plan() called without a value for a $variable
        "structure",  # well-formed but meaningless arrangement (e.g. heating half a fusion)
        "config",  # a reaction configuration field is missing, mistyped or inconsistent
        "instruction",  # a malformed instruction code in an experiment list
    }
)


# Longest source line __str__ quotes in full; longer ones are cut to a window around the caret.
_SHOWN = 100


def line_col(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset`` in ``source`` (clamped to the text)."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    start = source.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


class LanguageError(Exception):
    """Bad input to the instruction language: a formula, instruction list or configuration.

    Attributes: ``line`` and ``column`` (1-based, pointing into ``source``), ``message`` (what is
    wrong and, where it helps, what was expected), ``source`` (the text the position refers to;
    may be empty), ``kind`` (one of ``ERROR_KINDS``), ``where`` (a label for the source, e.g.
    ``"formula"`` or ``"cspbbr3.json"``).
    """

    def __init__(
        self,
        message: str,
        *,
        line: int = 1,
        column: int = 1,
        source: str = "",
        kind: str = "syntax",
        where: str = "",
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown LanguageError kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.source = source
        self.kind = kind
        self.where = where

    @classmethod
    def at(
        cls, source: str, offset: int, message: str, *, kind: str = "syntax", where: str = ""
    ) -> LanguageError:
        """An error at character ``offset`` of ``source`` (line/column computed here)."""
        line, column = line_col(source, offset)
        return cls(message, line=line, column=column, source=source, kind=kind, where=where)

    def __str__(self) -> str:
        label = f"{self.where}: " if self.where else ""
        head = f"{label}line {self.line}, column {self.column}: {self.message}"
        lines = self.source.split("\n")
        if not self.source or not 1 <= self.line <= len(lines):
            return head
        text = lines[self.line - 1].replace("\t", " ")
        column = self.column
        if len(text) > _SHOWN:  # a 5000-character line is shown as a window around the caret
            start = max(0, min(column - 1 - _SHOWN // 2, len(text) - _SHOWN))
            window = text[start : start + _SHOWN]
            prefix = "..." if start > 0 else ""
            suffix = "..." if start + _SHOWN < len(text) else ""
            text = prefix + window + suffix
            column = column - start + len(prefix)
        caret = " " * (column - 1) + "^"
        return f"{head}\n  {text}\n  {caret}"

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form, e.g. for the web form or a JSON-RPC error's ``data``."""
        return {
            "kind": self.kind,
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "where": self.where,
        }


def brief(value: object, limit: int = 40) -> str:
    """repr() of a caller's value for a message, cut short (and safe for a 5000-digit int): an
    error points at the problem, it does not echo a megabyte back."""
    try:
        text = repr(value)
    except ValueError:  # int beyond sys.get_int_max_str_digits()
        text = "a very large integer"
    return text if len(text) <= limit else text[:limit] + "..."
