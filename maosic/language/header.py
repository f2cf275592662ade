"""A formula file's own search space: header comment lines the compiler reads.

A formula alone does not say which ``$variables`` the optimizer varies, over what range, nor the
values of the constants. A formula file says it in comment lines, so pasting or uploading the
file is enough (docs/language.md, "Formula files")::

    # vary T from 90 to 180 step 0.5     °C, reactor temperature
    # vary C from 0.2 to 1.2 step 0.01   mmol/mL
    # fix Q = 0.15                        mL/min

``vary`` searches the variable within the bounds (``step`` is the grid; without it 1/100 of the
range; ``step 0`` is continuous); ``fix`` holds it at the value. Text after the numbers is a
note for people. The lines are comments to the formula grammar, so the same text compiles
whether or not anything reads its header. Any other comment is ignored.
"""

from __future__ import annotations

import math
import re
from typing import Any

from maosic.language.errors import LanguageError

_DIRECTIVE = re.compile(r"[ \t]*#[ \t]*(vary|fix)\b", re.IGNORECASE)
_NUMBER = r"[-+−]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = r"\$?([A-Za-z_][A-Za-z0-9_]*)"
_VARY = re.compile(
    rf"[ \t]+{_NAME}[ \t]+from[ \t]+({_NUMBER})[ \t]+to[ \t]+({_NUMBER})"
    rf"(?:[ \t]+step[ \t]+({_NUMBER}))?(?:[ \t]+(.*?))?[ \t]*$",
    re.IGNORECASE,
)
_FIX = re.compile(rf"[ \t]+{_NAME}[ \t]*=[ \t]*({_NUMBER})(?:[ \t]+(.*?))?[ \t]*$")
_USAGE = {
    "vary": "# vary NAME from LOW to HIGH [step DX]",
    "fix": "# fix NAME = VALUE",
}


def formula_space(text: str, where: str = "formula") -> dict[str, dict[str, Any]]:
    """The ``vary``/``fix`` lines of a formula's text as a search space for
    :func:`~maosic.language.config.formula_config` (``{"T": {"bound": [90, 180], "dx": 0.5},
    "Q": {"fixed": 0.15}}``); empty when the text has none. LanguageError at the line and
    column of a malformed line, a repeated name or bounds in the wrong order."""
    space: dict[str, dict[str, Any]] = {}
    offset = 0
    for line in text.split("\n"):
        start = offset
        offset += len(line) + 1
        head = _DIRECTIVE.match(line)
        if head is None:
            continue
        word = head.group(1).lower()
        rest = line[head.end() :]
        match = (_VARY if word == "vary" else _FIX).fullmatch(rest)
        if match is None:
            raise LanguageError.at(
                text,
                start + head.start(1),
                f"a '{word}' line is written {_USAGE[word]}",
                kind="syntax",
                where=where,
            )
        name = match.group(1)
        at = start + head.end() + match.start(1)
        if name in space:
            raise LanguageError.at(
                text, at, f"${name} is given twice in the header", kind="config", where=where
            )
        numbers = [_number(g) for g in match.groups()[1:-1] if g is not None]
        if not all(math.isfinite(x) for x in numbers):
            raise LanguageError.at(
                text, at, f"${name}: the numbers must be finite", kind="out-of-range", where=where
            )
        if word == "fix":
            space[name] = {"fixed": numbers[0]}
            continue
        low, high, *step = numbers
        if low > high:
            raise LanguageError.at(
                text,
                start + head.end() + match.start(2),
                f"${name}: the lower bound {low:g} is above the upper bound {high:g}",
                kind="out-of-range",
                where=where,
            )
        if low == high:  # equal bounds hold the variable, as on the web form
            space[name] = {"fixed": low}
            continue
        spec: dict[str, Any] = {"bound": [low, high]}
        if step:
            if step[0] < 0 or step[0] > high - low:
                raise LanguageError.at(
                    text,
                    start + head.end() + match.start(4),
                    f"${name}: step must be 0 (continuous) or > 0 and at most the range "
                    f"{high - low:g}",
                    kind="out-of-range",
                    where=where,
                )
            spec["dx"] = step[0]
        space[name] = spec
    return space


def _number(text: str) -> float | int:
    value = float(text.replace("−", "-"))
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
