"""The paper's instruction strings (Fig. S10): ``"FILL Cs-Precursor"``, ``"HEAT $temp"``, ...

A configuration's ``init`` and ``experiment`` lists may hold, beside instruction objects, a code
followed by positional arguments separated by spaces. Each argument is a number, a ``$variable``
or an expression without spaces, a reagent (``R2``, a name or formula of the configuration's
``reagent`` list), a pump id (``SP2``), a robot position or station number. Some of the paper's
strings mean more than one object, and what they mean depends on the rest of the list, so the
whole list is expanded at once (docs/language.md, "Instruction strings"):

* reagent i of the ``reagent`` list is drawn by pump ``SP<i>`` (the paper's R_i·SP_i);
* ``FILL <reagent>`` without a volume draws what the list later dispenses from that pump;
* ``PUMP_PARALLEL <t> [<Q>]`` runs, for t seconds at a total flow Q (mL/min, default: the
  parameter ``$Q``), every reagent filled before it whose ``ratio`` is above 0, each at
  ``Q * ratio / sum of ratios``; a ``PUMP <reagent> <rate>`` right after it (no time) joins it
  as one more stream at its own rate, for the same t (the paper's ODE dilution);
* ``PUMP_INIT`` without a pump makes every reagent's pump idle;
* a measurement (``ABS``, ``CD``, ``ABS-CD``) in a list with no ``MOVE`` at all has the sample
  carried to it: ``MOVE sampler``, ``MOVE <its station>`` before, ``MOVE waste`` after.

Every expansion yields ordinary instruction objects, so a string list and the object list it
stands for compile to the same plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maosic.language.errors import LanguageError, brief
from maosic.language.expr import Bin, Expr, ExprParser, Num, Var, fold
from maosic.language.instructions import (
    INSTRUCTIONS,
    REQUIRED,
    Locator,
    normalize_instruction,
    range_problem,
)
from maosic.language.lexer import Token, tokenize
from maosic.language.symbols import ROBOT_POSITIONS, station_position

if TYPE_CHECKING:
    from maosic.language.config import Reagent

Instruction = dict[str, Any]

# Where the sample must be for a cuvette measurement; in-line ones (PL) need no transport.
STATIONS: dict[str, str] = {"ABS": "abs", "CD": "cd", "ABS-CD": "cd"}
_PUMP_ID = re.compile(r"SP_?(\d{1,4})")
_REAGENT_NO = re.compile(r"R_?(\d{1,4})")
_TOTAL_FLOW = "Q"  # the parameter PUMP_PARALLEL's total flow defaults to


@dataclass
class _Word:
    text: str
    start: int  # offset within the string


@dataclass
class _Parallel:
    """A PUMP_PARALLEL string waiting for pass 2 (which knows what was filled before it)."""

    index: int  # position in the output list
    seconds: Expr
    total: Expr | None
    joined: list[tuple[str, str, Expr]]  # (pump, reagent, rate) of PUMP strings that join it
    path: tuple[Any, ...]


class _Expander:
    def __init__(self, loc: Locator, key: str, reagents: list[Reagent], params: set[str]):
        self.loc = loc
        self.key = key
        self.reagents = reagents
        self.params = params
        self.out: list[Instruction] = []
        self.parallels: list[_Parallel] = []
        self.auto_fills: list[tuple[int, tuple[Any, ...]]] = []  # FILLs without a volume
        self.measures: list[tuple[int, str]] = []  # cuvette measurements written as strings
        self._strings: dict[tuple[Any, ...], str] = {}

    # -- errors and arguments -----------------------------------------------------------------
    def fail(self, path: tuple[Any, ...], word: _Word | None, message: str, kind: str) -> Exception:
        """A LanguageError at ``word`` inside the string at ``path`` (or at the string)."""
        start = self.loc.offsets.get(path, -1) + 1
        text = self._text(path)
        where = ".".join(str(p) for p in path)
        if word is not None and start > 0 and self._in_place(start, text):
            return LanguageError.at(
                self.loc.source,
                start + word.start,
                f"{where}: {message}",
                kind=kind,
                where=self.loc.where,
            )
        return self.loc.error(path, message, kind)

    def _text(self, path: tuple[Any, ...]) -> str:
        return self._strings.get(path, "")

    def _in_place(self, start: int, text: str) -> bool:
        return self.loc.source[start : start + len(text)] == text

    def number(self, path: tuple[Any, ...], word: _Word, code: str, arg_name: str) -> Expr:
        start = self.loc.offsets.get(path, -1) + 1
        text = self._text(path)
        source = self.loc.source
        if start > 0 and self._in_place(start, text):
            tokens = tokenize(source, start + word.start, start + word.start + len(word.text))
        else:  # escapes in the JSON string: point every token at the opening quote
            at = max(start - 1, 0)
            tokens = [Token(t.kind, t.text, at) for t in tokenize(word.text)]
        try:
            parser = ExprParser(source, tokens)
            expr = parser.parse_expr()
            tail = parser.peek()
            if tail.kind != "EOF":
                raise parser.fail(tail, "expected an operator (+ - * /) or the end of the value")
        except LanguageError as exc:
            kind = "out-of-range" if exc.kind == "out-of-range" else "instruction"
            raise self.fail(
                path, word, f"{code}: {arg_name} {word.text!r}: {exc.message}", kind
            ) from None
        arg = next((a for a in INSTRUCTIONS[code].args if a.name == arg_name), None)
        folded = fold(expr)
        if arg is not None and isinstance(folded, Num):
            problem = range_problem(arg, folded.value)
            if problem:  # literal values are checked now; expressions when they are bound
                raise self.fail(path, word, f"{code}: {problem}", "out-of-range")
        return expr

    def reagent(self, path: tuple[Any, ...], word: _Word, code: str) -> tuple[str, str]:
        """(pump id, stock name) of a reagent or pump written in a string."""
        listing = ", ".join(r.name for r in self.reagents)
        if not self.reagents:
            raise self.fail(
                path,
                word,
                f"{code} {word.text}: a string instruction finds a reagent's pump through the "
                "configuration's 'reagent' list (reagent i is drawn by SP<i>); add the list or "
                "write the instruction as an object with its pump",
                "unknown-reagent",
            )
        m = _PUMP_ID.fullmatch(word.text) or _REAGENT_NO.fullmatch(word.text)
        if m is not None:
            i = int(m.group(1))
            if not 1 <= i <= len(self.reagents):
                raise self.fail(
                    path,
                    word,
                    f"{code} {word.text}: the reaction has {len(self.reagents)} reagent(s) "
                    f"({listing}), so there is no reagent or pump number {i}",
                    "unknown-reagent",
                )
            return f"SP{i}", self.reagents[i - 1].name
        for i, r in enumerate(self.reagents, start=1):
            if word.text in (r.name, r.formula):
                return f"SP{i}", r.name
        raise self.fail(
            path,
            word,
            f"{code}: reagent {brief(word.text)} is not in the reaction's reagent list ({listing})",
            "unknown-reagent",
        )

    # -- pass 1 -------------------------------------------------------------------------------
    def expand(self, items: list[Any]) -> list[Instruction]:
        previous_parallel: _Parallel | None = None
        for i, item in enumerate(items):
            path = (self.key, i)
            if not isinstance(item, str):
                self.out.append(normalize_instruction(item, self.loc, path))
                previous_parallel = None
                continue
            self._strings[path] = item
            words = [_Word(m.group(), m.start()) for m in re.finditer(r"\S+", item)]
            if not words:
                raise self.loc.error(path, "an empty instruction string", "instruction")
            code = words[0].text
            handler = _HANDLERS.get(code)
            if handler is None:
                if code in INSTRUCTIONS:
                    raise self.fail(
                        path, words[0], f"{code} cannot be written as a string", "instruction"
                    )
                raise self.fail(
                    path,
                    words[0],
                    f"unknown instruction code {code!r}; known codes: "
                    f"{', '.join(sorted(INSTRUCTIONS))}",
                    "instruction",
                )
            args = words[1:]
            low, high = _ARITY[code]
            if not low <= len(args) <= high:
                count = f"{low}" if low == high else f"{low} to {high}"
                raise self.fail(
                    path,
                    words[min(len(words) - 1, high + 1)] if len(args) > high else words[0],
                    f"{code} takes {count} argument(s) ({_USAGE[code]}), got {len(args)}",
                    "instruction",
                )
            if code == "PUMP" and len(args) == 2 and previous_parallel is not None:
                pump, name = self.reagent(path, args[0], code)
                rate = self.number(path, args[1], code, "rate_mL_min")
                if any(pump == joined for joined, _, _ in previous_parallel.joined):
                    raise self.fail(
                        path,
                        args[0],
                        f"{name} already joins this PUMP_PARALLEL: a pump cannot do two "
                        "things at once",
                        "pump-conflict",
                    )
                previous_parallel.joined.append((pump, name, rate))
                continue  # stays joined to the parallel move: a later PUMP may join it too
            handler(self, path, code, args)
            previous_parallel = self.parallels[-1] if code == "PUMP_PARALLEL" else None
        self._resolve_parallels()
        self._resolve_fills()
        return self._with_transport()

    def add(self, code: str, path: tuple[Any, ...], **values: Any) -> int:
        """Append an internal instruction, defaults filled in as the object form would."""
        inst: Instruction = {"code": code}
        for arg in INSTRUCTIONS[code].args:
            if arg.name in values:
                inst[arg.name] = values[arg.name]
            elif arg.default is REQUIRED:
                raise AssertionError(f"shorthand {code} lacks {arg.name}")  # programming error
            elif arg.default is not None:
                is_number = arg.type in ("number", "integer")
                inst[arg.name] = Num(float(arg.default), 0) if is_number else arg.default
        self.out.append(inst)
        return len(self.out) - 1

    # -- pass 2 -------------------------------------------------------------------------------
    def _filled_before(self, index: int) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for inst in self.out[:index]:
            if inst and inst["code"] == "FILL":
                seen[inst["pump"]] = inst["reagent"]
        return list(seen.items())

    def _resolve_parallels(self) -> None:
        ratios = {r.name: r.ratio for r in self.reagents}
        for par in self.parallels:
            joined = {pump for pump, _, _ in par.joined}
            mixed = [
                (pump, name)
                for pump, name in self._filled_before(par.index)
                if ratios.get(name, 0.0) > 0 and pump not in joined
            ]
            if not mixed and not par.joined:
                raise self.loc.error(
                    par.path,
                    "PUMP_PARALLEL: no reagent with a ratio above 0 was filled before it; "
                    "FILL the reagents it should run first",
                    "structure",
                )
            total = par.total
            if mixed and total is None:
                if _TOTAL_FLOW not in self.params:
                    raise self.loc.error(
                        par.path,
                        "PUMP_PARALLEL <t> without a total flow: give it (PUMP_PARALLEL $t 0.5, "
                        f"mL/min) or define the parameter ${_TOTAL_FLOW} in 'param'",
                        "instruction",
                    )
                total = Var(_TOTAL_FLOW, self.loc.offset(par.path))
            share = sum(ratios[name] for _, name in mixed)
            moves = []
            for pump, name in mixed:
                scaled = Bin("*", total, Num(ratios[name], 0), 0)  # type: ignore[arg-type]
                rate = fold(Bin("/", scaled, Num(share, 0), 0))
                moves.append(self._move(pump, rate, par.seconds))
            moves += [self._move(pump, rate, par.seconds) for pump, _, rate in par.joined]
            self.out[par.index] = {"code": "PUMP_PARALLEL", "moves": moves}

    @staticmethod
    def _move(pump: str, rate: Expr, seconds: Expr) -> dict[str, Any]:
        volume = fold(Bin("/", Bin("*", rate, seconds, 0), Num(60.0, 0), 0))
        return {"pump": pump, "volume_mL": volume, "rate_mL_min": rate}

    def _resolve_fills(self) -> None:
        for index, path in self.auto_fills:
            pump = self.out[index]["pump"]
            parts: list[Expr] = []
            for inst in self.out[index + 1 :]:
                if inst["code"] == "FILL" and inst["pump"] == pump:
                    break  # a later FILL of the same pump draws for what follows it
                if inst["code"] == "PUMP" and inst["pump"] == pump:
                    parts.append(inst["volume_mL"])
                elif inst["code"] == "PUMP_PARALLEL":
                    parts += [m["volume_mL"] for m in inst["moves"] if m["pump"] == pump]
            if not parts:
                raise self.loc.error(
                    path,
                    f"FILL without a volume draws what {pump} later dispenses, but nothing "
                    f"after it pumps from {pump}; give the volume (FILL <reagent> <mL>)",
                    "structure",
                )
            total = parts[0]
            for part in parts[1:]:
                total = Bin("+", total, part, 0)
            self.out[index]["volume_mL"] = fold(total)

    def _with_transport(self) -> list[Instruction]:
        if not self.measures or any(inst["code"] == "MOVE" for inst in self.out):
            return self.out
        at = {index: station for index, station in self.measures}
        last = max(at)
        out: list[Instruction] = []
        here = None
        for index, inst in enumerate(self.out):
            station = at.get(index)
            if station is not None and here != station:
                if here is None:
                    out.append({"code": "MOVE", "module": "CR1", "position": "sampler"})
                out.append({"code": "MOVE", "module": "CR1", "position": station})
                here = station
            out.append(inst)
            if index == last:
                out.append({"code": "MOVE", "module": "CR1", "position": "waste"})
        return out


# -- one handler per code: (expander, path, code, arguments) -----------------------------------
Handler = Callable[[_Expander, tuple[Any, ...], str, list[_Word]], None]


def _pump_init(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    if args:
        ex.add(code, path, pump=ex.reagent(path, args[0], code)[0])
        return
    if not ex.reagents:
        raise ex.fail(
            path,
            None,
            "PUMP_INIT without a pump makes every reagent's pump idle, but the configuration "
            "has no 'reagent' list; name the pump (PUMP_INIT SP1)",
            "structure",
        )
    for i in range(1, len(ex.reagents) + 1):
        ex.add(code, path, pump=f"SP{i}")


def _fill(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    pump, name = ex.reagent(path, args[0], code)
    values: dict[str, Any] = {"pump": pump, "reagent": name}
    if len(args) > 2:
        values["rate_mL_min"] = ex.number(path, args[2], code, "rate_mL_min")
    if len(args) > 1:
        values["volume_mL"] = ex.number(path, args[1], code, "volume_mL")
        ex.add(code, path, **values)
        return
    values["volume_mL"] = Num(0.0, 0)  # set in pass 2
    ex.auto_fills.append((ex.add(code, path, **values), path))


def _pump(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    pump, _ = ex.reagent(path, args[0], code)
    rate = ex.number(path, args[1], code, "rate_mL_min")
    if len(args) < 3:
        raise ex.fail(
            path,
            args[1],
            f"PUMP {args[0].text} {args[1].text} has no time: right after a PUMP_PARALLEL it "
            "joins that move; elsewhere give the seconds (PUMP <reagent> <mL/min> <s>)",
            "instruction",
        )
    seconds = ex.number(path, args[2], "WAIT", "seconds")
    volume = fold(Bin("/", Bin("*", rate, seconds, 0), Num(60.0, 0), 0))
    ex.add(code, path, pump=pump, volume_mL=volume, rate_mL_min=rate)


def _withdraw(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    pump, _ = ex.reagent(path, args[0], code)
    ex.add(
        code,
        path,
        pump=pump,
        volume_mL=ex.number(path, args[1], code, "volume_mL"),
        rate_mL_min=ex.number(path, args[2], code, "rate_mL_min"),
    )


def _pump_stop(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    ex.add(code, path, pump=ex.reagent(path, args[0], code)[0])


def _parallel(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    seconds = ex.number(path, args[0], "WAIT", "seconds")
    total = ex.number(path, args[1], "PUMP", "rate_mL_min") if len(args) > 1 else None
    ex.out.append({})  # placeholder, replaced in pass 2
    ex.parallels.append(_Parallel(len(ex.out) - 1, seconds, total, [], path))


def _wait(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    ex.add(code, path, seconds=ex.number(path, args[0], code, "seconds"))


def _heat(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    values = {"setpoint_C": ex.number(path, args[0], code, "setpoint_C")}
    if len(args) > 1:
        values["ramp_C_min"] = ex.number(path, args[1], code, "ramp_C_min")
    ex.add(code, path, **values)


def _plain(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    ex.add(code, path)


def _move(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    word = args[0]
    position = station_position(word.text)
    if position is None:
        raise ex.fail(
            path,
            word,
            f"MOVE: unknown position {brief(word.text)}; give a name "
            f"({', '.join(ROBOT_POSITIONS)}) or a station number 1 to {len(ROBOT_POSITIONS)}",
            "out-of-range",
        )
    ex.add(code, path, position=position)


def _measure(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    values: dict[str, Any] = {}
    if args:
        values["integration_ms"] = ex.number(path, args[0], code, "integration_ms")
    if len(args) > 1:
        values["excitation_nm"] = ex.number(path, args[1], code, "excitation_nm")
    index = ex.add(code, path, **values)
    if code in STATIONS:
        ex.measures.append((index, STATIONS[code]))


def _valve(ex: _Expander, path: tuple[Any, ...], code: str, args: list[_Word]) -> None:
    valve, state = args
    if not re.fullmatch(r"V\d{1,4}", valve.text):
        raise ex.fail(path, valve, f"VALVE: expected a valve id such as V1, got {valve.text!r}",
                      "unknown-symbol")  # fmt: skip
    if state.text not in ("0", "1"):
        raise ex.fail(path, state, "VALVE: the state is 1 (open) or 0 (closed)", "instruction")
    ex.add(code, path, valve=valve.text, open=state.text == "1")


_HANDLERS: dict[str, Handler] = {
    "PUMP_INIT": _pump_init,
    "FILL": _fill,
    "PUMP": _pump,
    "WITHDRAW": _withdraw,
    "PUMP_STOP": _pump_stop,
    "PUMP_PARALLEL": _parallel,
    "WAIT": _wait,
    "HEAT": _heat,
    "HEAT_OFF": _plain,
    "MOVE": _move,
    "ABS": _measure,
    "CD": _measure,
    "ABS-CD": _measure,
    "PL": _measure,
    "VALVE": _valve,
}
# (fewest, most) arguments after the code, and how to write them (for messages and docs).
_ARITY: dict[str, tuple[int, int]] = {
    "PUMP_INIT": (0, 1),
    "FILL": (1, 3),
    "PUMP": (2, 3),
    "WITHDRAW": (3, 3),
    "PUMP_STOP": (1, 1),
    "PUMP_PARALLEL": (1, 2),
    "WAIT": (1, 1),
    "HEAT": (1, 2),
    "HEAT_OFF": (0, 0),
    "MOVE": (1, 1),
    "ABS": (0, 1),
    "CD": (0, 1),
    "ABS-CD": (0, 1),
    "PL": (0, 2),
    "VALVE": (2, 2),
}
_USAGE: dict[str, str] = {
    "PUMP_INIT": "PUMP_INIT [<pump or reagent>]",
    "FILL": "FILL <reagent> [<mL> [<mL/min>]]",
    "PUMP": "PUMP <reagent> <mL/min> [<s>]",
    "WITHDRAW": "WITHDRAW <reagent> <mL> <mL/min>",
    "PUMP_STOP": "PUMP_STOP <pump or reagent>",
    "PUMP_PARALLEL": "PUMP_PARALLEL <s> [<total mL/min>]",
    "WAIT": "WAIT <s>",
    "HEAT": "HEAT <°C> [<°C/min>]",
    "HEAT_OFF": "HEAT_OFF",
    "MOVE": "MOVE <position or station number>",
    "ABS": "ABS [<ms>]",
    "CD": "CD [<ms>]",
    "ABS-CD": "ABS-CD [<ms>]",
    "PL": "PL [<ms> [<excitation nm>]]",
    "VALVE": "VALVE <valve> <0|1>",
}


def expand_instructions(
    items: list[Any], loc: Locator, key: str, reagents: list[Reagent], params: set[str]
) -> list[Instruction]:
    """The internal instructions of a configuration list holding objects and/or strings."""
    return _Expander(loc, key, reagents, params).expand(items)


def usage() -> dict[str, str]:
    """How each code is written as a string (for docs and messages)."""
    return dict(_USAGE)
