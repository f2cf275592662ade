"""Tokenizer for formulas and parameter expressions.

One compiled regular expression, tried at each position; tokens are plain tuples
``(kind, text, offset)`` because the compiler's latency budget is under 1 ms for a 20-step
formula.  Context-dependent meanings (``*`` is transfer outside brackets and multiplication
inside, the bare name ``x`` is the react operator) are resolved by the parser, not here.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from maosic.language.errors import LanguageError


class Token(NamedTuple):
    kind: str  # NUM VAR NAME STR DOT STAR TIMES PLUS MINUS SLASH PIPE ( ) [ ] , ^ EOF
    text: str
    offset: int  # 0-based character offset in the source


_OPERATORS: dict[str, str] = {
    "·": "DOT",  # U+00B7 middle dot, the paper's transfer operator
    "⋅": "DOT",  # U+22C5 dot operator, a common look-alike
    ".": "DOT",
    "*": "STAR",
    "×": "TIMES",
    "+": "PLUS",
    "-": "MINUS",
    "−": "MINUS",  # U+2212 minus sign
    "/": "SLASH",
    "|": "PIPE",
    "(": "(",
    ")": ")",
    "[": "[",
    "]": "]",
    ",": ",",
    "^": "^",
}

# Leading whitespace and comments are consumed by the same match as the token after them, which
# halves the number of regex matches on typical, well-spaced formulas.
_TOKEN = re.compile(
    r"(?:[ \t\r\n]+|\#[^\n]*)*"
    r"(?:(?P<NUM>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<VAR>\$[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<NAME>[A-Za-z_][A-Za-z0-9_₀-₉]*(?:-[A-Za-z][A-Za-z0-9_₀-₉]*)*)"
    r"|(?P<STR>\"[^\"\n]*\"|'[^'\n]*')"
    r"|(?P<op>[·⋅.*×+\-−/|()\[\],^])"
    r"|(?P<bad>.)"
    r"|$)",
    re.DOTALL,
)


def tokenize(source: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Split ``source[start:end]`` into tokens (offsets into ``source``), ending with ``EOF``.

    Raises LanguageError at the first character that cannot start a token.
    """
    end = len(source) if end is None else end
    tokens: list[Token] = []
    append = tokens.append
    new = tuple.__new__  # skips NamedTuple.__new__'s argument handling: this loop is hot
    operators = _OPERATORS
    for m in _TOKEN.finditer(source, start, end):
        kind = m.lastgroup
        if kind is None:
            break  # only whitespace/comments were left
        text = m.group(kind)
        if kind == "op":
            append(new(Token, (operators[text], text, m.start(kind))))
        elif kind == "bad":
            raise _bad_character(source, m.start(kind))
        else:
            append(new(Token, (kind, text, m.start(kind))))
    append(Token("EOF", "", end))
    return tokens


def _bad_character(source: str, pos: int) -> LanguageError:
    ch = source[pos]
    if ch == "$":
        msg = "expected a variable name after '$' (letters, digits, _; e.g. $T)"
    elif ch in "\"'":
        msg = f"unterminated quoted name: add the closing {ch} on the same line"
    else:
        msg = (
            f"unexpected character {ch!r}; a formula uses module symbols, reagents, numbers, "
            "$variables and the operators · + × | ( ) [ ] ,"
        )
    return LanguageError.at(source, pos, msg, kind="syntax")
