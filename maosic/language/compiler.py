"""Compiler: formula -> AST -> checked reaction -> instruction codes -> JSON-RPC plan.

A formula is normalised into one *reaction*: a fusion of reagent transfers (the streams that run
together), the environments they react under, and the characterization steps that follow.  It
is emitted in the order the rig must act (see docs/language.md, "Physical sequence"):

1. ``PUMP_INIT`` every pump, then ``FILL`` every syringe from its stock bottle;
2. environments that must be ready first (``HEAT`` waits for a stable temperature, ``VALVE``);
3. the infusion: ``PUMP`` for one stream, ``PUMP_PARALLEL`` for a fusion, ``times`` over,
   with ``WAIT t_i`` after each;
4. environment hold times (``WAIT t_H``);
5. characterization steps in order (``MOVE``, ``ABS``/``CD``/``ABS-CD``/``PL``, ``VALVE``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from maosic.language.bare import fill_bare
from maosic.language.errors import LanguageError, brief
from maosic.language.expr import Bin, Expr, Num, fold, var_nodes
from maosic.language.instructions import (
    INSTRUCTIONS,
    REQUIRED,
    Binder,
    export_instruction,
    to_call,
)
from maosic.language.lexer import tokenize
from maosic.language.parser import FormulaParser
from maosic.language.shorthand import STATIONS
from maosic.language.symbols import ModuleSpec
from maosic.language.tree import (
    Characterize,
    Fusion,
    Group,
    ModuleRef,
    Node,
    React,
    ReagentRef,
    Transfer,
    Value,
)

if TYPE_CHECKING:
    from maosic.language.config import ReactionConfig

Instruction = dict[str, Any]

# Plan values are rounded to this many decimals (in their own unit) so that floating-point
# noise such as 0.15 - 3*1.2*0.15/3.6 = -2.8e-17 mL/min becomes the intended 0.
_ROUND_DECIMALS = 12


# --------------------------------------------------------------------------------------------
# Program
# --------------------------------------------------------------------------------------------


@dataclass
class Program:
    """A compiled experiment: instruction codes plus what is needed to bind and plan them.

    ``instructions`` is JSON-serialisable (numbers, or expression strings over $variables).
    ``variables`` holds the $names (without '$') the instructions use.
    """

    instructions: list[Instruction]
    variables: set[str]
    source: str = ""
    where: str = ""
    init: list[Instruction] = field(default_factory=list)
    _internal: list[Instruction] = field(default_factory=list, repr=False)
    _init_internal: list[Instruction] = field(default_factory=list, repr=False)
    _init_source: str = field(default="", repr=False)
    _constants: dict[str, float] = field(default_factory=dict, repr=False)
    _free: dict[str, tuple[float, float]] | None = field(default=None, repr=False)
    _first_use: dict[str, int] = field(default_factory=dict, repr=False)

    def _environment(self, bindings: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(bindings, Mapping):
            raise LanguageError(
                "bindings must be a mapping of $variable name to number",
                source=self.source,
                kind="missing-binding",
                where=self.where,
            )
        env = dict(self._constants)
        for name, value in bindings.items():
            key = name[1:] if isinstance(name, str) and name.startswith("$") else name
            # numbers.Real also admits numpy scalars, which optimizers hand back.
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise self._at_variable(
                    str(key),
                    f"the value bound to ${key} must be a number, got {brief(value)}",
                    "missing-binding",
                )
            if not _finite(value):
                raise self._at_variable(
                    str(key),
                    f"the value bound to ${key} must be finite, got {brief(value)}",
                    "out-of-range",
                )
            env[str(key)] = float(value)
        required = self.variables if self._free is None else set(self._free) & self.variables
        for name in sorted(required):
            if name not in bindings and f"${name}" not in bindings:
                raise self._at_variable(
                    name,
                    f"no value for ${name}: the optimizer's action must bind it",
                    "missing-binding",
                )
        for name, (low, high) in (self._free or {}).items():
            x = env.get(name)
            if x is not None and not low <= x <= high:
                raise self._at_variable(
                    name,
                    f"${name} = {x:g} is outside its bound [{low:g}, {high:g}]",
                    "out-of-range",
                )
        return env

    def _at_variable(self, name: str, message: str, kind: str) -> LanguageError:
        offset = self._first_use.get(name, 0)
        return LanguageError.at(self.source, offset, message, kind=kind, where=self.where)

    def plan(
        self, bindings: Mapping[str, float] | None = None, *, include_init: bool = False
    ) -> list[dict[str, Any]]:
        """JSON-RPC calls ``{"method", "params"}`` with every $variable bound.

        ``bindings`` maps variable names (with or without '$') to numbers; for a program from a
        configuration, constants (``var: 0``) default to their configured values.  Raises
        LanguageError (kind ``missing-binding`` / ``out-of-range``) with the position of the
        offending expression.
        """
        env = self._environment(bindings or {})
        calls: list[dict[str, Any]] = []
        for inst, binder in self._bound(env, include_init):
            call = to_call(inst, binder)
            if call is not None:
                calls.append(call)
        return calls

    def _bound(self, env: dict[str, float], include_init: bool) -> list[tuple[Instruction, Binder]]:
        """Each instruction with a binder whose errors point into that instruction's source."""
        body = _RoundingBinder(env, self.source, self.where)
        pairs = [(inst, body) for inst in self._internal]
        if include_init:
            init = _RoundingBinder(env, self._init_source or self.source, self.where)
            pairs = [(inst, init) for inst in self._init_internal] + pairs
        return pairs

    def modules_used(self) -> set[str]:
        """Daemon module ids (``SP1``, ``H1``, ``CR1``, ``SPEC1``, ...) the program drives."""
        used: set[str] = set()
        for inst in self._init_internal + self._internal:
            spec = INSTRUCTIONS[inst["code"]]
            for arg in spec.args:
                if arg.type == "module" and arg.name in inst:
                    used.add(inst[arg.name])
                elif arg.type == "moves":
                    used.update(m["pump"] for m in inst[arg.name])
        return used

    def reagent_volumes(self, bindings: Mapping[str, float] | None = None) -> dict[str, float]:
        """mL of each stock reagent one run draws (sum of its FILL volumes, init included)."""
        env = self._environment(bindings or {})
        volumes: dict[str, float] = {}
        fill_volume = next(a for a in INSTRUCTIONS["FILL"].args if a.name == "volume_mL")
        for inst, binder in self._bound(env, include_init=True):
            if inst["code"] == "FILL":
                v = binder.value(inst["volume_mL"], fill_volume, "FILL")
                volumes[inst["reagent"]] = round(volumes.get(inst["reagent"], 0.0) + v, 12)
        return volumes


class _RoundingBinder(Binder):
    def value(self, expr: Expr, arg: Any, code: str) -> float:
        x = super().value(expr, arg, code)
        if isinstance(x, int):
            return x
        return round(x, _ROUND_DECIMALS) + 0.0


def make_program(
    internal: list[Instruction],
    source: str,
    *,
    where: str = "",
    init: list[Instruction] | None = None,
    init_source: str = "",
    config: ReactionConfig | None = None,
    first_use: dict[str, int] | None = None,
) -> Program:
    """Wrap internal instructions (Expr-valued) into a Program.

    ``first_use`` ($name -> offset) saves a tree walk when the parser already collected it.
    """
    init_internal = init or []
    scan = init_internal if first_use is not None else init_internal + internal
    first_use = dict(first_use or {})
    for inst in scan:
        for expr in _expressions(inst):
            _first_uses(expr, first_use)
    variables = {name for name in first_use}
    constants: dict[str, float] = {}
    free: dict[str, tuple[float, float]] | None = None
    if config is not None:
        constants = config.defaults()
        free = {name: (p.bound[0], p.bound[1]) for name, p in config.params.items() if p.var}
    return Program(
        instructions=[export_instruction(i) for i in internal],
        variables=variables,
        source=source,
        where=where,
        init=[export_instruction(i) for i in init_internal],
        _internal=internal,
        _init_internal=init_internal,
        _init_source=init_source,
        _constants=constants,
        _free=free,
        _first_use=first_use,
    )


def _expressions(inst: Instruction) -> list[Expr]:
    found: list[Expr] = []
    for key, value in inst.items():
        if isinstance(value, Expr):
            found.append(value)
        elif key == "moves":
            for move in value:
                found.extend(v for v in move.values() if isinstance(v, Expr))
    return found


def _first_uses(expr: Expr, into: dict[str, int]) -> None:
    for node in var_nodes(expr):
        if node.name not in into or node.offset < into[node.name]:
            into[node.name] = node.offset


# --------------------------------------------------------------------------------------------
# Normalisation: AST -> (transfers, environments, characterization steps)
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reaction:
    transfers: list[Transfer]
    envs: list[ModuleRef]
    steps: list[ModuleRef]
    pipe_offset: int


def _unwrap(node: Node) -> Node:
    while isinstance(node, Group):
        node = node.inner
    return node


def _split_chain(node: Node) -> tuple[Node, list[ModuleRef], int]:
    node = _unwrap(node)
    if isinstance(node, Characterize):
        inner, steps, first = _split_chain(node.inner)
        return inner, steps + node.steps, first if steps else node.offset
    return node, [], -1


def _split_react(source: str, node: Node) -> tuple[Node, list[ModuleRef]]:
    node = _unwrap(node)
    if isinstance(node, React):
        inner, envs = _split_react(source, node.inner)
        return inner, envs + node.envs
    if isinstance(node, Characterize):
        raise LanguageError.at(
            source,
            node.offset,
            "a characterization '|' must come last: the product cannot react further after "
            "it is measured",
            kind="structure",
        )
    return node, []


def _collect_fusion(source: str, node: Node, into: list[Transfer]) -> None:
    node = _unwrap(node)
    if isinstance(node, Transfer):
        into.append(node)
    elif isinstance(node, Fusion):
        for part in node.parts:
            _collect_fusion(source, part, into)
    elif isinstance(node, React):
        raise LanguageError.at(
            source,
            node.offset,
            f"here {node.envs[0].text} applies to only part of a fusion, because × binds "
            "tighter than +; a reaction environment must enclose the whole fusion: write "
            f"(A + B) × {node.envs[0].text}[...]",
            kind="structure",
        )
    else:  # Characterize inside a fusion
        raise LanguageError.at(
            source,
            node.offset,
            "a characterization '|' must come last, after the whole reaction, not inside a fusion",
            kind="structure",
        )


def normalise(source: str, tree: Node, config: ReactionConfig | None = None) -> Reaction:
    """Check the formula's structure and flatten it into one Reaction."""
    body, steps, pipe = _split_chain(tree)
    mixture, envs = _split_react(source, body)
    transfers: list[Transfer] = []
    _collect_fusion(source, mixture, transfers)
    for t in transfers:
        if t.module.implicit:
            t.module.number = _own_pump(source, t.reagent, config)
            t.module.text = t.module.module_id
    _check_conflicts(source, [t.module for t in transfers], "pump")
    _check_conflicts(source, envs, "environment")
    if steps and not any(s.spec.kind == "spectrometer" for s in steps):
        raise LanguageError.at(
            source,
            pipe,
            "nothing to measure: the characterization after '|' has no measurement; add one "
            "of ABS, CD, ABS-CD or PL",
            kind="nothing-to-measure",
        )
    return Reaction(transfers, envs, steps, pipe)


def _own_pump(source: str, ref: ReagentRef, config: ReactionConfig | None) -> int:
    """The pump of a reagent written without one: R_i (or the i-th listed reagent) -> SP<i>."""
    if ref.number is not None:
        return ref.number
    reagents = config.reagents if config is not None else []
    for i, r in enumerate(reagents, start=1):
        if ref.text in (r.name, r.formula):
            return i
    if reagents:
        _reagent_name(source, ref, config)  # raises: not in the list, which it names
    raise LanguageError.at(
        source,
        ref.offset,
        f"{ref.text} has no pump: write {ref.text}·SP1 (a pump of your choice), or list it in "
        "the configuration's reagent list, where reagent i is drawn by SP<i>",
        kind="structure",
    )


def _check_conflicts(source: str, refs: list[ModuleRef], what: str) -> None:
    seen: dict[str, ModuleRef] = {}
    for ref in refs:
        mid = ref.module_id
        if mid in seen:
            raise LanguageError.at(
                source,
                ref.offset,
                f"{ref.text} is used twice at once (first at column "
                f"{_column(source, seen[mid].offset)}): one {ref.spec.kind} cannot serve two "
                f"{'streams' if what == 'pump' else 'environments'} at the same time",
                kind="pump-conflict",
            )
        seen[mid] = ref


def _column(source: str, offset: int) -> int:
    return offset - (source.rfind("\n", 0, offset) + 1) + 1


# --------------------------------------------------------------------------------------------
# Semantic checks against a configuration
# --------------------------------------------------------------------------------------------


def _reagent_name(source: str, ref: ReagentRef, config: ReactionConfig | None) -> str:
    if config is None or not config.reagents:
        # No reagent list: generic symbols and names go to the daemon as written.
        return f"R{ref.number}" if ref.number is not None else ref.text
    names = [r.name for r in config.reagents]
    listing = ", ".join(names) or "(none)"
    if ref.number is not None:
        if not 1 <= ref.number <= len(names):
            raise LanguageError.at(
                source,
                ref.offset,
                f"{ref.text}: the reaction has {len(names)} reagent(s) ({listing}), so R"
                f"{ref.number} does not exist",
                kind="unknown-reagent",
            )
        return names[ref.number - 1]
    for r in config.reagents:
        if ref.text in (r.name, r.formula):
            return r.name
    raise LanguageError.at(
        source,
        ref.offset,
        f"reagent {ref.text!r} is not in the reaction's reagent list ({listing})",
        kind="unknown-reagent",
    )


def _ratio(source: str, t: Transfer, config: ReactionConfig | None) -> float:
    """The ``ratio`` of a stream's reagent in the configuration (1 without a reagent list)."""
    if config is None or not config.reagents:
        return 1.0
    name = _reagent_name(source, t.reagent, config)
    return next(r.ratio for r in config.reagents if r.name == name)


def _check_variables(source: str, uses: dict[str, int], config: ReactionConfig | None) -> None:
    if config is None:
        return
    if uses:
        for name, offset in uses.items():
            if name not in config.params:
                defined = ", ".join(f"${p}" for p in config.params) or "none"
                raise LanguageError.at(
                    source,
                    offset,
                    f"${name} is not defined by the configuration's param (defined: {defined})",
                    kind="undefined-variable",
                )


# --------------------------------------------------------------------------------------------
# Emission
# --------------------------------------------------------------------------------------------


def _finite(value: numbers.Real) -> bool:
    """math.isfinite that says False for an int beyond a double instead of raising."""
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError):
        return False


def make(code: str, **values: Any) -> Instruction:
    """An internal instruction with arguments in table order and defaults filled in."""
    spec = INSTRUCTIONS[code]
    out: Instruction = {"code": code}
    for arg in spec.args:
        if arg.name in values:
            out[arg.name] = values[arg.name]
        elif arg.default is not REQUIRED and arg.default is not None:
            out[arg.name] = Num(float(arg.default), 0) if arg.type == "number" else arg.default
    return out


def _param(ref: ModuleRef, index: int) -> Value:
    """The index-th entry of a module's vector, or its default as a number."""
    if index < len(ref.values):
        return ref.values[index]
    default = ref.spec.params[index].default
    return Num(float(default), ref.close_offset)  # type: ignore[arg-type]


def _literal(value: Value) -> float | None:
    folded = fold(value) if isinstance(value, Expr) else None
    return folded.value if isinstance(folded, Num) else None


def _emit_heat(source: str, ref: ModuleRef) -> list[Instruction]:
    return [
        make(
            "HEAT",
            module=ref.module_id,
            setpoint_C=_param(ref, 0),
            ramp_C_min=_param(ref, 1),
        )
    ]


def _emit_hold(source: str, ref: ModuleRef) -> list[Instruction]:
    hold = _param(ref, 2)
    return [] if _literal(hold) == 0.0 else [make("WAIT", seconds=hold)]


def _emit_valve(source: str, ref: ModuleRef) -> list[Instruction]:
    state = _literal(ref.values[0])
    if state is None:
        raise LanguageError.at(
            source,
            ref.values[0].offset,
            f"{ref.text}: open must be written as 0 or 1, not an expression",
            kind="syntax",
        )
    return [make("VALVE", valve=ref.module_id, open=state == 1.0)]


def _emit_robot(source: str, ref: ModuleRef) -> list[Instruction]:
    start, end = ref.values[0], ref.values[1]
    rest = _param(ref, 2)
    out = [make("MOVE", module=ref.module_id, position=start.text)]  # type: ignore[union-attr]
    if _literal(rest) != 0.0:
        out.append(make("WAIT", seconds=rest))
    out.append(make("MOVE", module=ref.module_id, position=end.text))  # type: ignore[union-attr]
    return out


def _emit_measure(source: str, ref: ModuleRef) -> list[Instruction]:
    values = {p.arg: _param(ref, i) for i, p in enumerate(ref.spec.params)}
    return [make(ref.spec.codes[0], module=ref.module_id, **values)]


def _no_op(source: str, ref: ModuleRef) -> list[Instruction]:
    return []


Emitter = Callable[[str, ModuleRef], list[Instruction]]

# What a module does before the infusion (environments), after it (hold), and as a step.
# Keyed by ModuleSpec.emit; a lab adding a module kind adds a row here.
EMITTERS: dict[str, dict[str, Emitter]] = {
    "heater": {"before": _emit_heat, "after": _emit_hold, "step": _no_op},
    "valve": {"before": _emit_valve, "after": _no_op, "step": _emit_valve},
    "robot": {"before": _no_op, "after": _no_op, "step": _emit_robot},
    "measure": {"before": _no_op, "after": _no_op, "step": _emit_measure},
}


def _emitter(spec: ModuleSpec, phase: str) -> Emitter:
    table = EMITTERS.get(spec.emit)
    if table is None:
        raise AssertionError(f"symbol table entry {spec.symbol} names unknown emitter {spec.emit}")
    return table[phase]


def _pump_schedule(source: str, transfers: list[Transfer]) -> tuple[int, Expr]:
    """(times, t_i) shared by every stream of the fusion; LanguageError when they differ."""
    first = transfers[0].module
    times_ref = _param(first, 3)
    times = _literal(times_ref)
    wait = _param(first, 1)
    for t in transfers:
        mine = _param(t.module, 3)
        n = _literal(mine)
        if n is None:
            raise LanguageError.at(
                source,
                mine.offset,
                f"times of {t.module.text} must be a whole number written out, not an expression",
                kind="syntax",
            )
        if n != times:
            raise LanguageError.at(
                source,
                mine.offset,
                f"streams fused with + run together, so they need the same number of "
                f"injections: {t.module.text} has {n:g}, {first.text} has {times:g}",
                kind="structure",
            )
        my_wait = _param(t.module, 1)
        if my_wait.text() != wait.text():
            raise LanguageError.at(
                source,
                _param(t.module, 1).offset,
                f"streams fused with + run together, so they need the same wait t_i: "
                f"{t.module.text} has {my_wait.text()}, {first.text} has {wait.text()}",
                kind="structure",
            )
    return int(times or 1), wait


def emit(source: str, rx: Reaction, config: ReactionConfig | None) -> list[Instruction]:
    """Instruction codes (internal form) for a checked reaction."""
    out: list[Instruction] = []
    names = [_reagent_name(source, t.reagent, config) for t in rx.transfers]
    times, wait = _pump_schedule(source, rx.transfers)
    for t in rx.transfers:
        out.append(make("PUMP_INIT", pump=t.module.module_id))
    for t, name in zip(rx.transfers, names, strict=True):
        per_shot = _param(t.module, 0)
        needed = per_shot if times == 1 else fold(Bin("*", per_shot, Num(times, 0), 0))
        volume = needed
        if t.reagent.values:
            volume = fold(t.reagent.values[-1])  # type: ignore[arg-type]
            have, need = _literal(volume), _literal(needed)
            if have is not None and need is not None and have < need:
                raise LanguageError.at(
                    source,
                    t.reagent.values[-1].offset,
                    f"{t.reagent.text} provides {have:g} mL but {t.module.text} dispenses "
                    f"{need:g} mL",
                    kind="out-of-range",
                )
        out.append(make("FILL", pump=t.module.module_id, reagent=name, volume_mL=volume))
    for env in rx.envs:
        out.extend(_emitter(env.spec, "before")(source, env))
    for _ in range(times):
        if len(rx.transfers) == 1:
            m = rx.transfers[0].module
            out.append(
                make(
                    "PUMP",
                    pump=m.module_id,
                    volume_mL=_param(m, 0),
                    rate_mL_min=_param(m, 2),
                )
            )
        else:
            moves = [
                {
                    "pump": t.module.module_id,
                    "volume_mL": _param(t.module, 0),
                    "rate_mL_min": _param(t.module, 2),
                }
                for t in rx.transfers
            ]
            out.append(make("PUMP_PARALLEL", moves=moves))
        if _literal(wait) != 0.0:
            out.append(make("WAIT", seconds=wait))
    for env in rx.envs:
        out.extend(_emitter(env.spec, "after")(source, env))
    out.extend(_steps_with_transport(source, rx.steps))
    return out


def _steps_with_transport(source: str, steps: list[ModuleRef]) -> list[Instruction]:
    """The characterization steps; when none moves the sample, cuvette measurements get it
    carried to them (sampler, their station, then waste), as the paper's bare ``| ABS-CD``
    means on a rig whose spectrometer reads a cuvette."""
    out: list[Instruction] = []
    carry = not any(s.spec.kind == "robot" for s in steps)
    stations = [STATIONS.get(s.spec.symbol) if carry else None for s in steps]
    last = max((i for i, st in enumerate(stations) if st), default=-1)
    here = None
    for i, (step, station) in enumerate(zip(steps, stations, strict=True)):
        if station is not None and station != here:
            if here is None:
                out.append(make("MOVE", module="CR1", position="sampler"))
            out.append(make("MOVE", module="CR1", position=station))
            here = station
        out.extend(_emitter(step.spec, "step")(source, step))
        if i == last:
            out.append(make("MOVE", module="CR1", position="waste"))
    return out


# --------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------


def compile_formula(
    formula: str, config: ReactionConfig | None = None, *, where: str = "formula"
) -> Program:
    """Compile a formula; with ``config``, reagents and $variables are checked against it.

    Raises LanguageError (line/column into ``formula``) on any bad input.
    """
    if not isinstance(formula, str):
        raise LanguageError(f"a formula must be text, got {type(formula).__name__}", where=where)
    try:
        parser = FormulaParser(formula, tokenize(formula))
        tree = parser.parse()
        rx = normalise(formula, tree, config)
        fill_bare(
            formula,
            rx.transfers,
            rx.envs + rx.steps,
            config,
            parser.var_uses,
            lambda t: _ratio(formula, t, config),
        )
        _check_variables(formula, parser.var_uses, config)
        internal = emit(formula, rx, config)
    except LanguageError as exc:
        exc.where = exc.where or where
        raise
    init = config.init_internal() if config is not None else []
    init_source = config.source if config is not None else ""
    return make_program(
        internal,
        formula,
        where=where,
        init=init,
        init_source=init_source,
        config=config,
        first_use=parser.var_uses,
    )


def compile_config(config: ReactionConfig) -> Program:
    """Compile a validated configuration (its ``experiment`` list, else its ``formula``)."""
    return config.program()
