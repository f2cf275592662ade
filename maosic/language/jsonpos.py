"""Where each value sits in a JSON text, so configuration errors can name line and column.

``json.loads`` checks the syntax (and reports its own positions); this second, tiny pass walks
the same text and records the offset of every value by its path, e.g. ``("param", "T",
"bound", 0)``.  It assumes valid JSON because it only runs after ``json.loads`` succeeded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from maosic.language.errors import LanguageError

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")

Path = tuple[Any, ...]

# ``path + (KEY,)`` holds the offset of the key of the member at ``path`` (for "unknown field").
KEY = "\x00key"


# Numbers a configuration can hold: integers within 64 bits, finite doubles; checked as json
# reads them (a 5000-digit integer made json.loads raise a bare ValueError, 1e400 became inf).
MAX_INT = 2**63 - 1
MAX_NUMBER_CHARS = 100


class _BadNumber(ValueError):
    def __init__(self, literal: str, message: str) -> None:
        super().__init__(message)
        self.literal = literal
        self.message = message


def _parse_int(literal: str) -> int:
    if len(literal) > 20:  # cheaper than int(), and int() refuses > 4300 digits anyway
        raise _BadNumber(literal, "integer out of range: more than 64 bits")
    value = int(literal)
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise _BadNumber(literal, "integer out of range: more than 64 bits")
    return value


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _BadNumber(
            literal, f"number too long ({len(literal)} characters, at most {MAX_NUMBER_CHARS})"
        )
    value = float(literal)
    if value - value != 0.0:
        raise _BadNumber(literal, "number out of range: not a finite number")
    return value


def _number_offset(text: str, literal: str) -> int:
    """Offset of the first JSON number value spelled ``literal`` (0 when not found)."""
    offsets: dict[Path, int] = {}
    try:
        _walk(text, _skip(text, 0), (), offsets)
    except (IndexError, ValueError, RecursionError):
        pass  # the text after the bad number is never read by json.loads: it may be anything
    for pos in sorted(offsets.values()):
        m = _NUMBER.match(text, pos)
        if m is not None and m.group() == literal:
            return pos
    return 0


def loads_with_positions(text: str, where: str = "") -> tuple[Any, dict[Path, int]]:
    """(decoded JSON, {path: offset of the value}) or LanguageError at the syntax error."""
    try:
        data = json.loads(text, parse_int=_parse_int, parse_float=_parse_float)
    except _BadNumber as exc:
        raise LanguageError.at(
            text,
            _number_offset(text, exc.literal),
            exc.message,
            kind="config",
            where=where,
        ) from None
    except json.JSONDecodeError as exc:
        raise LanguageError(
            f"not valid JSON: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
            source=text,
            kind="config",
            where=where,
        ) from None
    except RecursionError:
        raise LanguageError(
            "the JSON is nested too deeply", source=text, kind="config", where=where
        ) from None
    offsets: dict[Path, int] = {}
    try:
        _walk(text, _skip(text, 0), (), offsets)
    except (IndexError, ValueError, RecursionError):
        offsets = {(): 0}  # positions are a courtesy; the decoded data is still right
    return data, offsets


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


def _walk(text: str, pos: int, path: Path, out: dict[Path, int]) -> int:
    """Record the value at ``pos`` (and its children); return the offset after it."""
    out[path] = pos
    ch = text[pos]
    if ch == "{":
        pos = _skip(text, pos + 1)
        if text[pos] == "}":
            return pos + 1
        while True:
            key_at = pos
            key, pos = json.decoder.scanstring(text, pos + 1)
            out[path + (key, KEY)] = key_at
            pos = _skip(text, pos)
            pos = _skip(text, pos + 1)  # the ':'
            pos = _skip(text, _walk(text, pos, path + (key,), out))
            if text[pos] == "}":
                return pos + 1
            pos = _skip(text, pos + 1)  # the ','
    if ch == "[":
        pos = _skip(text, pos + 1)
        if text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            pos = _skip(text, _walk(text, pos, path + (index,), out))
            index += 1
            if text[pos] == "]":
                return pos + 1
            pos = _skip(text, pos + 1)
    if ch == '"':
        return json.decoder.scanstring(text, pos + 1)[1]
    for literal in ("true", "false", "null", "NaN", "Infinity", "-Infinity"):
        if text.startswith(literal, pos):
            return pos + len(literal)
    m = _NUMBER.match(text, pos)
    if m is None:
        raise ValueError(f"unexpected JSON at {pos}")
    return m.end()
