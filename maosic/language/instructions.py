"""Instruction codes: the table, their validation, and their translation to daemon calls.

An instruction is a JSON object ``{"code": "HEAT", "module": "H1", "setpoint_C": "$T", ...}``.
Number arguments hold a number or an expression string (``"$C*0.15/3.6"``) bound at plan time.
The same objects are what ``compile_formula`` produces and what a reaction configuration's
``experiment`` list holds, so a configuration can be written either way.  Every argument is
present in canonical form (defaults filled in, expressions re-printed), which is what makes a
formula and its hand-written instruction list compare equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maosic.language.errors import LanguageError
from maosic.language.expr import Expr, ExprParser, Num, as_json_value
from maosic.language.jsonpos import KEY
from maosic.language.lexer import Token, tokenize
from maosic.language.symbols import MODULES, ROBOT_POSITIONS

REQUIRED = object()  # sentinel: the argument has no default


def _range(symbol: str, param: str) -> tuple[float | None, float | None]:
    for p in MODULES[symbol].params:
        if p.name == param:
            return p.low, p.high
    raise KeyError(f"symbol table has no parameter {param} for {symbol}")  # programming error


@dataclass(frozen=True)
class ArgSpec:
    """One instruction argument.

    ``type``: ``number`` (number or expression), ``integer``, ``module`` (a daemon module id of
    kind ``module_kind``), ``reagent`` (a name), ``position`` (robot position), ``bool``,
    ``moves`` (list of {pump, volume_mL, rate_mL_min}).  ``param`` is the daemon parameter it
    becomes (None: not sent, e.g. the heater id, which ``heater.set`` does not take).
    """

    name: str
    type: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    param: str | None = ""  # "" means: same as name
    module_kind: str = ""
    unit: str = ""

    @property
    def daemon_param(self) -> str | None:
        return self.name if self.param == "" else self.param


@dataclass(frozen=True)
class InstructionSpec:
    """One instruction code and the daemon method it becomes."""

    code: str
    method: str
    meaning: str
    args: tuple[ArgSpec, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)  # params always sent


_VOL = _range("SP", "v_i")
_RATE = _range("SP", "rate")
_SECONDS = (0.0, 86400.0)
_INTEG = _range("ABS-CD", "I_p")


def _pump() -> ArgSpec:
    return ArgSpec("pump", "module", module_kind="pump")


def _volume() -> ArgSpec:
    return ArgSpec("volume_mL", "number", low=_VOL[0], high=_VOL[1], unit="mL")


def _rate() -> ArgSpec:
    return ArgSpec("rate_mL_min", "number", low=_RATE[0], high=_RATE[1], unit="mL/min")


def _integration() -> ArgSpec:
    return ArgSpec("integration_ms", "number", 100, _INTEG[0], _INTEG[1], unit="ms")


def _spec_module(kind: str, default: str) -> ArgSpec:
    return ArgSpec("module", "module", default, param=None, module_kind=kind)


INSTRUCTIONS: dict[str, InstructionSpec] = {
    spec.code: spec
    for spec in (
        InstructionSpec("PUMP_INIT", "pump.stop", "make a pump idle before a run", (_pump(),)),
        InstructionSpec(
            "FILL",
            "pump.fill",
            "draw a stock reagent into a syringe",
            (
                _pump(),
                ArgSpec("reagent", "reagent"),
                _volume(),
                ArgSpec("rate_mL_min", "number", None, _RATE[0], _RATE[1], unit="mL/min"),
            ),
        ),
        InstructionSpec(
            "PUMP",
            "pump.infuse",
            "infuse from one pump",
            (_pump(), _volume(), _rate()),
            {"wait": True},
        ),
        InstructionSpec(
            "WITHDRAW",
            "pump.withdraw",
            "withdraw into one pump",
            (_pump(), _volume(), _rate()),
            {"wait": True},
        ),
        InstructionSpec(
            "PUMP_PARALLEL",
            "pump.parallel",
            "infuse from several pumps at once (fusion of reagent streams)",
            (ArgSpec("moves", "moves"),),
            {"wait": True},
        ),
        InstructionSpec("PUMP_STOP", "pump.stop", "stop a pump", (_pump(),)),
        InstructionSpec(
            "WAIT",
            "system.wait",
            "wait on the lab's clock",
            (ArgSpec("seconds", "number", low=_SECONDS[0], high=_SECONDS[1], unit="s"),),
        ),
        InstructionSpec(
            "HEAT",
            "heater.set",
            "set the reactor temperature and wait until it is stable",
            (
                _spec_module("heater", "H1"),
                ArgSpec("setpoint_C", "number", REQUIRED, *_range("H", "T"), unit="°C"),
                ArgSpec("ramp_C_min", "number", 10, *_range("H", "dT/dt"), unit="°C/min"),
                ArgSpec("wait_stable", "bool", True),
                ArgSpec("timeout_s", "number", 1800, 1.0, 86400.0, unit="s"),
            ),
        ),
        InstructionSpec(
            "HEAT_OFF", "heater.off", "switch the heater off", (_spec_module("heater", "H1"),)
        ),
        InstructionSpec(
            "MOVE",
            "robot.move",
            "move the sample with the robot arm",
            (_spec_module("robot", "CR1"), ArgSpec("position", "position")),
        ),
        InstructionSpec(
            "ABS",
            "spectrometer.absorbance",
            "absorbance spectrum",
            (_spec_module("spectrometer", "SPEC1"), _integration()),
        ),
        InstructionSpec(
            "CD",
            "spectrometer.cd",
            "CD spectrum (with absorbance)",
            (_spec_module("spectrometer", "SPEC1"), _integration()),
        ),
        InstructionSpec(
            "ABS-CD",
            "spectrometer.cd",
            "absorbance and CD in one acquisition",
            (_spec_module("spectrometer", "SPEC1"), _integration()),
        ),
        InstructionSpec(
            "PL",
            "spectrometer.pl",
            "photoluminescence spectrum",
            (
                _spec_module("spectrometer", "PL1"),
                _integration(),
                ArgSpec("excitation_nm", "number", 300, *_range("PL", "lambda_ex"), unit="nm"),
            ),
        ),
        InstructionSpec(
            "VALVE",
            "valve.set",
            "open or close a valve",
            (ArgSpec("valve", "module", module_kind="valve"), ArgSpec("open", "bool")),
        ),
    )
}

_MOVE_KEYS = ("pump", "volume_mL", "rate_mL_min")


def _id_pattern(template: str) -> str:
    return re.escape(template).replace(re.escape("{n}"), r"\d+")


def _module_pattern(kind: str) -> re.Pattern[str] | None:
    """Daemon module ids of ``kind`` (from the symbol table's daemon_id templates, read now so
    that modules registered at run time count)."""
    patterns = sorted({_id_pattern(s.daemon_id) for s in MODULES.values() if s.kind == kind})
    return re.compile("|".join(patterns)) if patterns else None


# --------------------------------------------------------------------------------------------
# Validation of instruction objects written by hand (configuration files)
# --------------------------------------------------------------------------------------------


class Locator:
    """Turns a JSON path into a LanguageError at the right line/column of the source text."""

    def __init__(
        self, source: str, offsets: Mapping[tuple[Any, ...], int], where: str = ""
    ) -> None:
        self.source = source
        self.offsets = offsets
        self.where = where

    def offset(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.offsets:
            path = path[:-1]
        return self.offsets.get(path, 0)

    def error(
        self, path: tuple[Any, ...], message: str, kind: str = "config", at_key: bool = False
    ) -> LanguageError:
        """An error at the value at ``path`` (or at its key, for unknown fields)."""
        where = ".".join(str(p) for p in path)
        text = f"{where}: {message}" if where else message
        offset = self.offsets.get(path + (KEY,)) if at_key else None
        if offset is None:
            offset = self.offset(path)
        return LanguageError.at(self.source, offset, text, kind=kind, where=self.where)

    def expression(self, path: tuple[Any, ...], text: str) -> Expr:
        """Parse a string value as an expression, positions pointing into the JSON source."""
        start = self.offsets.get(path, -1) + 1
        in_place = start > 0 and self.source[start : start + len(text)] == text
        source = self.source
        try:
            if in_place:
                tokens = tokenize(source, start, start + len(text))
            else:
                # The JSON string has escapes, so its characters do not line up with the
                # file: lex the decoded text, then point every token at the opening quote.
                at = max(start - 1, 0)
                tokens = [Token(t.kind, t.text, at) for t in tokenize(text)]
            parser = ExprParser(source, tokens)
            if parser.peek().kind == "EOF":
                raise LanguageError.at(source, max(start - 1, 0), "empty expression")
            expr = parser.parse_expr()
            tail = parser.peek()
            if tail.kind != "EOF":
                raise parser.fail(tail, "expected an operator (+ - * /) or the end of the value")
        except LanguageError as exc:
            exc.where = self.where
            exc.message = f"{'.'.join(str(p) for p in path)}: {exc.message}"
            exc.kind = "instruction"
            raise
        return expr


def normalize_instruction(raw: Any, loc: Locator, path: tuple[Any, ...]) -> dict[str, Any]:
    """Validate one hand-written instruction; return its internal form (Expr for numbers)."""
    if isinstance(raw, str):
        raw = {"code": raw}  # bare codes such as "HEAT_OFF" are allowed when nothing is needed
    if not isinstance(raw, dict):
        raise loc.error(
            path,
            'an instruction must be an object like {"code": "WAIT", "seconds": 60}',
            "instruction",
        )
    code = raw.get("code")
    spec = INSTRUCTIONS.get(code) if isinstance(code, str) else None
    if spec is None:
        raise loc.error(
            path + ("code",),
            f"unknown instruction code {code!r}; known codes: {', '.join(sorted(INSTRUCTIONS))}",
            "instruction",
        )
    allowed = {a.name for a in spec.args} | {"code"}
    for key in raw:
        if key not in allowed:
            raise loc.error(
                path + (key,),
                f"{code} has no argument {key!r}; its arguments are "
                f"{', '.join(a.name for a in spec.args)}",
                "instruction",
                at_key=True,
            )
    out: dict[str, Any] = {"code": code}
    for arg in spec.args:
        if arg.name not in raw:
            if arg.default is REQUIRED:
                raise loc.error(path, f"{code} needs the argument {arg.name!r}", "instruction")
            if arg.default is not None:
                out[arg.name] = _default_value(arg)
            continue
        out[arg.name] = _normalize_arg(arg, raw[arg.name], loc, path + (arg.name,), code)
    return out


def _default_value(arg: ArgSpec) -> Any:
    if arg.type in ("number", "integer"):
        return Num(float(arg.default), 0)
    return arg.default


def _normalize_arg(arg: ArgSpec, value: Any, loc: Locator, path: tuple[Any, ...], code: str) -> Any:
    kind = arg.type
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise loc.error(
                path, 'expected a number or an expression string like "$T"', "instruction"
            )
        if isinstance(value, str):
            expr = loc.expression(path, value)
        else:
            try:
                number = float(value)
            except OverflowError:  # an int beyond a double (10**400)
                number = math.inf
            if not math.isfinite(number):
                raise loc.error(path, f"{code}: {arg.name} must be a finite number", "out-of-range")
            expr = Num(number, loc.offset(path))
        folded_check(arg, expr, loc, path, code)
        return expr
    if kind == "bool":
        if not isinstance(value, bool):
            raise loc.error(path, "expected true or false", "instruction")
        return value
    if kind == "module":
        pattern = _module_pattern(arg.module_kind)
        if not isinstance(value, str) or pattern is None or not pattern.fullmatch(value):
            raise loc.error(
                path,
                f"expected the id of a {arg.module_kind} (e.g. "
                f"{_example_id(arg.module_kind)}), found {value!r}",
                "unknown-symbol",
            )
        return value
    if kind == "reagent":
        if not isinstance(value, str) or not value.strip():
            raise loc.error(path, "expected a reagent name", "instruction")
        return value
    if kind == "position":
        if value not in ROBOT_POSITIONS:
            raise loc.error(
                path,
                f"unknown robot position {value!r}; expected one of {', '.join(ROBOT_POSITIONS)}",
                "out-of-range",
            )
        return value
    if kind == "moves":
        return _normalize_moves(value, loc, path)
    raise AssertionError(f"instruction table has an unknown argument type {kind}")


def _normalize_moves(value: Any, loc: Locator, path: tuple[Any, ...]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise loc.error(
            path, "expected a non-empty list of {pump, volume_mL, rate_mL_min}", "instruction"
        )
    args = {a.name: a for a in INSTRUCTIONS["PUMP"].args}
    moves: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, move in enumerate(value):
        mpath = path + (i,)
        if not isinstance(move, dict):
            raise loc.error(
                mpath, "each move must be an object {pump, volume_mL, rate_mL_min}", "instruction"
            )
        for key in move:
            if key not in args:
                raise loc.error(
                    mpath + (key,), f"a move has no field {key!r}", "instruction", at_key=True
                )
        out: dict[str, Any] = {}
        for key in _MOVE_KEYS:
            if key not in move:
                raise loc.error(mpath, f"this move needs {key!r}", "instruction")
            out[key] = _normalize_arg(args[key], move[key], loc, mpath + (key,), "PUMP_PARALLEL")
        if out["pump"] in seen:
            raise loc.error(
                mpath + ("pump",),
                f"pump {out['pump']} appears twice in one "
                "parallel move: a pump cannot do two things at once",
                "pump-conflict",
            )
        seen.add(out["pump"])
        moves.append(out)
    return moves


def folded_check(arg: ArgSpec, expr: Expr, loc: Locator, path: tuple[Any, ...], code: str) -> None:
    """Range-check a literal number argument at load time (expressions wait for plan time)."""
    if not isinstance(expr, Num):
        return
    problem = range_problem(arg, expr.value)
    if problem:
        raise loc.error(path, f"{code}: {problem}", "out-of-range")


def range_problem(arg: ArgSpec, x: float) -> str:
    """'' when ``x`` is acceptable for ``arg``, else a sentence saying why not."""
    if not math.isfinite(x):
        return f"{arg.name} must be a finite number, got {x}"
    if arg.type == "integer" and x != int(x):
        return f"{arg.name} must be a whole number, got {x:g}"
    low = -float("inf") if arg.low is None else arg.low
    high = float("inf") if arg.high is None else arg.high
    if not low <= x <= high:
        return f"{arg.name} = {x:g} {arg.unit} is outside [{low:g}, {high:g}] {arg.unit}".replace(
            "  ", " "
        )
    return ""


def _example_id(kind: str) -> str:
    return next((s.module_id(1) for s in MODULES.values() if s.kind == kind), "?")


# --------------------------------------------------------------------------------------------
# Export and translation
# --------------------------------------------------------------------------------------------


def export_instruction(inst: Mapping[str, Any]) -> dict[str, Any]:
    """Internal instruction -> JSON-serialisable instruction (numbers or expression strings)."""
    out: dict[str, Any] = {}
    for key, value in inst.items():
        if isinstance(value, Expr):
            out[key] = as_json_value(value)
        elif key == "moves":
            out[key] = [export_instruction(m) for m in value]
        else:
            out[key] = value
    return out


class Binder:
    """Evaluates argument expressions for one plan: bindings, range checks, positioned errors."""

    def __init__(self, env: Mapping[str, float], source: str, where: str = "") -> None:
        self.env = env
        self.source = source
        self.where = where

    def fail(self, expr: Expr, message: str, kind: str) -> LanguageError:
        return LanguageError.at(self.source, expr.offset, message, kind=kind, where=self.where)

    def value(self, expr: Expr, arg: ArgSpec, code: str) -> float:
        try:
            x = expr.evaluate(self.env, self.source)
        except LanguageError as exc:
            exc.where = self.where
            raise
        problem = range_problem(arg, x)
        if problem:
            raise self.fail(expr, f"{code}: {problem}", "out-of-range")
        return int(x) if arg.type == "integer" else x


def to_call(inst: Mapping[str, Any], binder: Binder) -> dict[str, Any] | None:
    """One internal instruction -> ``{"method", "params"}``, or None when it does nothing.

    Zero-volume fills/infusions and zero-second waits are dropped: a pump whose computed rate is
    0 (e.g. the ODE stream at the highest concentration) simply does not move.
    """
    spec = INSTRUCTIONS[inst["code"]]
    params: dict[str, Any] = {}
    for arg in spec.args:
        if arg.name not in inst:
            continue
        value = inst[arg.name]
        if arg.type in ("number", "integer"):
            value = binder.value(value, arg, spec.code)
        elif arg.type == "moves":
            value = _bind_moves(value, binder)
            if not value:
                return None
        target = arg.daemon_param
        if target is not None:
            params[target] = value
    code = spec.code
    if code in ("FILL", "PUMP", "WITHDRAW") and params["volume_mL"] == 0.0:
        return None
    if code == "WAIT" and params["seconds"] == 0.0:
        return None
    if code in ("PUMP", "WITHDRAW") and params["rate_mL_min"] <= 0.0:
        raise _zero_rate(inst, binder)
    params.update(spec.fixed)
    return {"method": spec.method, "params": params}


_PUMP_ARGS = {a.name: a for a in INSTRUCTIONS["PUMP"].args}


def _bind_moves(moves: list[dict[str, Any]], binder: Binder) -> list[dict[str, Any]]:
    bound: list[dict[str, Any]] = []
    for move in moves:
        volume = binder.value(move["volume_mL"], _PUMP_ARGS["volume_mL"], "PUMP_PARALLEL")
        rate = binder.value(move["rate_mL_min"], _PUMP_ARGS["rate_mL_min"], "PUMP_PARALLEL")
        if volume == 0.0:
            continue
        if rate <= 0.0:
            raise _zero_rate(move, binder)
        bound.append({"pump": move["pump"], "volume_mL": volume, "rate_mL_min": rate})
    return bound


def _zero_rate(inst: Mapping[str, Any], binder: Binder) -> LanguageError:
    """A positive volume at rate 0 would never finish: report it at the rate's position."""
    return binder.fail(
        inst["rate_mL_min"],
        f"pump {inst['pump']} has a volume to deliver but its rate is 0 mL/min",
        "out-of-range",
    )
