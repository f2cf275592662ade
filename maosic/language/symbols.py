"""The module symbol table (paper Table S1) as data.

Each entry says what a module symbol means: its kind, the roles it may play in a formula, its
parameter vector (name, unit, range, meaning, default for optional trailing entries), the
instruction codes it compiles to and the daemon methods those become.  A lab adds a module by
adding an entry here; the parser never needs to change.  ``emit`` names the compiler's emitter
(one of ``compiler.EMITTERS``) that turns a use of the module into instruction codes.

Roles: ``transfer`` (right of ``·``: takes a reagent), ``environment`` (right of ``×``: reaction
conditions), ``characterization`` (right of ``|``: handles or measures the product).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from maosic.language.errors import LanguageError

ROBOT_POSITIONS: tuple[str, ...] = ("home", "sampler", "abs", "cd", "waste")


def station_position(text: str) -> str | None:
    """A robot position by name, or by the lab's station number (1 = home ... 5 = waste, in
    the order of ROBOT_POSITIONS); None when it is neither."""
    if text in ROBOT_POSITIONS:
        return text
    if text.isdigit() and 1 <= int(text) <= len(ROBOT_POSITIONS):
        return ROBOT_POSITIONS[int(text) - 1]
    return None


@dataclass(frozen=True)
class ParamSpec:
    """One entry of a module's parameter vector.

    ``kind`` is ``number`` (any real in [low, high]), ``integer``, ``position`` (a name from
    ``choices``) or ``boolean`` (0 or 1).  ``arg`` is the instruction argument the value feeds.
    ``default`` makes the entry optional when it (and every entry after it) is left out.
    """

    name: str
    unit: str
    meaning: str
    arg: str
    low: float | None = None
    high: float | None = None
    kind: str = "number"
    choices: tuple[str, ...] = ()
    default: float | str | None = None

    def describe_range(self) -> str:
        """Human-readable range, e.g. ``[20, 250] °C`` or ``one of home, sampler``."""
        if self.kind == "position":
            return "one of " + ", ".join(self.choices)
        if self.kind == "boolean":
            return "0 (closed/off) or 1 (open/on)"
        unit = f" {self.unit}" if self.unit else ""
        return f"[{_fmt(self.low)}, {_fmt(self.high)}]{unit}"


@dataclass(frozen=True)
class ModuleSpec:
    """A module symbol: what it is, how it is parameterised, what it compiles to."""

    symbol: str
    kind: str
    meaning: str
    roles: frozenset[str]
    params: tuple[ParamSpec, ...]
    emit: str
    codes: tuple[str, ...]
    methods: tuple[str, ...]
    daemon_id: str  # "{n}" is replaced by the module number, e.g. "SP{n}" -> "SP2"
    numbered: bool = True
    accepts: frozenset[str] = field(default_factory=frozenset)  # reagent phases (transfer role)

    @property
    def required_count(self) -> int:
        """Number of leading parameters without a default."""
        count = 0
        for p in self.params:
            if p.default is not None:
                break
            count += 1
        return count

    def module_id(self, number: int | None) -> str:
        """The daemon's module id for this symbol with number ``number`` (1 when omitted)."""
        return self.daemon_id.replace("{n}", str(1 if number is None else number))

    def signature(self) -> str:
        """``SP[v_i (mL), t_i (s), rate (mL/min), times]`` style summary for messages and docs."""
        parts = [f"{p.name} ({p.unit})" if p.unit else p.name for p in self.params]
        return f"{self.symbol}[{', '.join(parts)}]"


def _fmt(x: float | None) -> str:
    if x is None:
        return "any"
    return f"{x:g}"


_INTEGRATION = ParamSpec(
    "I_p", "ms", "detector integration time", "integration_ms", 1.0, 60000.0, default=100.0
)

MODULES: dict[str, ModuleSpec] = {
    "H": ModuleSpec(
        symbol="H",
        kind="heater",
        meaning="heating module, a PID-controlled reactor heater",
        roles=frozenset({"environment"}),
        params=(
            ParamSpec("T", "°C", "reaction temperature", "setpoint_C", 20.0, 250.0),
            ParamSpec(
                "dT/dt", "°C/min", "heating ramp rate", "ramp_C_min", 0.1, 60.0, default=10.0
            ),
            ParamSpec(
                "t_H",
                "s",
                "hold time at T after the reagents are in",
                "seconds",
                0.0,
                86400.0,
                default=0.0,
            ),
        ),
        emit="heater",
        codes=("HEAT", "WAIT"),
        methods=("heater.set", "system.wait"),
        daemon_id="H{n}",
    ),
    "SP": ModuleSpec(
        symbol="SP",
        kind="pump",
        meaning="syringe pump",
        roles=frozenset({"transfer"}),
        params=(
            ParamSpec("v_i", "mL", "volume of each injection", "volume_mL", 0.0, 50.0),
            ParamSpec("t_i", "s", "wait after each injection", "seconds", 0.0, 86400.0),
            ParamSpec("rate", "mL/min", "infusion rate", "rate_mL_min", 0.0, 100.0),
            ParamSpec(
                "times",
                "",
                "number of injections",
                "times",
                1.0,
                1000.0,
                kind="integer",
                default=1.0,
            ),
        ),
        emit="pump",
        codes=("PUMP_INIT", "FILL", "PUMP", "PUMP_PARALLEL", "WAIT"),
        methods=("pump.stop", "pump.fill", "pump.infuse", "pump.parallel", "system.wait"),
        daemon_id="SP{n}",
        accepts=frozenset({"liquid"}),
    ),
    "CR": ModuleSpec(
        symbol="CR",
        kind="robot",
        meaning="collaborative robot arm moving the sample between named positions",
        roles=frozenset({"characterization"}),
        params=(
            ParamSpec(
                "P_i", "", "start position", "position", kind="position", choices=ROBOT_POSITIONS
            ),
            ParamSpec(
                "P_f", "", "final position", "position", kind="position", choices=ROBOT_POSITIONS
            ),
            ParamSpec(
                "t_r", "s", "rest at P_i before moving on", "seconds", 0.0, 3600.0, default=0.0
            ),
        ),
        emit="robot",
        codes=("MOVE", "WAIT"),
        methods=("robot.move", "system.wait"),
        daemon_id="CR{n}",
    ),
    "ABS-CD": ModuleSpec(
        symbol="ABS-CD",
        kind="spectrometer",
        meaning="absorbance and circular dichroism in one acquisition",
        roles=frozenset({"characterization"}),
        params=(_INTEGRATION,),
        emit="measure",
        codes=("ABS-CD",),
        methods=("spectrometer.cd",),
        daemon_id="SPEC1",
        numbered=False,
    ),
    "ABS": ModuleSpec(
        symbol="ABS",
        kind="spectrometer",
        meaning="absorbance spectrum",
        roles=frozenset({"characterization"}),
        params=(_INTEGRATION,),
        emit="measure",
        codes=("ABS",),
        methods=("spectrometer.absorbance",),
        daemon_id="SPEC1",
        numbered=False,
    ),
    "CD": ModuleSpec(
        symbol="CD",
        kind="spectrometer",
        meaning="circular dichroism spectrum (with its absorbance)",
        roles=frozenset({"characterization"}),
        params=(_INTEGRATION,),
        emit="measure",
        codes=("CD",),
        methods=("spectrometer.cd",),
        daemon_id="SPEC1",
        numbered=False,
    ),
    "PL": ModuleSpec(
        symbol="PL",
        kind="spectrometer",
        meaning="photoluminescence spectrum",
        roles=frozenset({"characterization"}),
        params=(
            _INTEGRATION,
            ParamSpec(
                "lambda_ex",
                "nm",
                "excitation wavelength",
                "excitation_nm",
                200.0,
                800.0,
                default=300.0,
            ),
        ),
        emit="measure",
        codes=("PL",),
        methods=("spectrometer.pl",),
        daemon_id="PL{n}",
    ),
    "V": ModuleSpec(
        symbol="V",
        kind="valve",
        meaning="two-way valve",
        roles=frozenset({"environment", "characterization"}),
        params=(ParamSpec("open", "", "1 opens, 0 closes", "open", kind="boolean"),),
        emit="valve",
        codes=("VALVE",),
        methods=("valve.set",),
        daemon_id="V{n}",
    ),
}

# A symbol, then an optional module number written "SP1" or "SP_1".
_MODULE_NAME = re.compile(r"([A-Za-z][A-Za-z-]*?)(?:_?(\d+))?")
_REAGENT_NAME = re.compile(r"R(?:_?(\d+))?")

# Module and reagent numbers ("SP2", "R_3", the i of R[i, v]) are small: checked before int()
# sees the digits, so "R" followed by thousands of digits is a positioned error, not a crash.
MAX_INDEX = 9999


def _index(name: str, m: re.Match[str], group: int) -> int | None:
    """The number of a module/reagent symbol, or None; LanguageError (positioned within
    ``name``) when it is beyond MAX_INDEX."""
    digits = m.group(group)
    if digits is None:
        return None
    start = m.start(group)
    if len(digits) > len(str(MAX_INDEX)) or int(digits) > MAX_INDEX:
        shown = name if len(name) <= 40 else name[: start + 8] + "..."
        raise LanguageError(
            f"the number in {shown!r} is too large: module and reagent numbers go up to "
            f"{MAX_INDEX}",
            column=start + 1,
            source=name,
            kind="out-of-range",
        )
    return int(digits)


_MODULE_CACHE: dict[str, tuple[ModuleSpec, int | None] | None] = {}


def parse_module_name(name: str) -> tuple[ModuleSpec, int | None] | None:
    """Split ``SP1``/``SP_2``/``ABS-CD`` into (spec, number); None when it is not a module.

    LanguageError (column within ``name``) when the number is larger than MAX_INDEX.
    """
    try:
        return _MODULE_CACHE[name]
    except KeyError:
        pass
    found = _parse_module_name(name)
    if len(_MODULE_CACHE) < 4096:  # bounded: names come from user text
        _MODULE_CACHE[name] = found
    return found


# The paper writes indices as subscripts (SP₁, R₂): the same modules and reagents as SP1, R2.
# One character each way, so columns in messages stay right.
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def _parse_module_name(name: str) -> tuple[ModuleSpec, int | None] | None:
    name = name.translate(_SUBSCRIPTS)
    m = _MODULE_NAME.fullmatch(name)
    if m is None:
        return None
    spec = MODULES.get(m.group(1))
    if spec is None:
        return None
    number = _index(name, m, 2)
    if number is not None and not spec.numbered:
        return None
    return spec, number


def parse_reagent_symbol(name: str) -> tuple[bool, int | None]:
    """(is a generic reagent symbol ``R``/``R1``/``R_2``, its number or None).

    LanguageError (column within ``name``) when the number is larger than MAX_INDEX.
    """
    name = name.translate(_SUBSCRIPTS)
    m = _REAGENT_NAME.fullmatch(name)
    if m is None:
        return False, None
    return True, _index(name, m, 1)


def register_module(spec: ModuleSpec) -> None:
    """Add a module symbol at run time (a lab's extra instrument); the parser picks it up.

    ``spec.emit`` must name a row of ``compiler.EMITTERS`` and ``spec.codes`` rows of
    ``instructions.INSTRUCTIONS``; both are checked when the symbol is first compiled.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z-]*[A-Za-z]|[A-Za-z]", spec.symbol):
        raise ValueError(f"module symbol {spec.symbol!r} must be letters (and inner '-')")
    if spec.symbol in MODULES or spec.symbol == "R":
        raise ValueError(f"module symbol {spec.symbol!r} is already taken")
    MODULES[spec.symbol] = spec
    _MODULE_CACHE.clear()  # earlier look-ups may have said "not a module"


def unregister_module(symbol: str) -> None:
    """Remove a symbol added by :func:`register_module` (tests, lab reconfiguration)."""
    MODULES.pop(symbol, None)
    _MODULE_CACHE.clear()


def known_symbols() -> list[str]:
    """All module symbols, for "did you mean" hints."""
    return sorted(MODULES)
