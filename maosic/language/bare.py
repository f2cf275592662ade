"""Bare module symbols (paper Table S2, Fig. S9): ``(R1·SP1 + R2·SP2) × H | ABS-CD``.

The paper writes a formula without parameter vectors and lets the reaction configuration supply
them. Each parameter of a bare module is taken, in this order, from

1. the configuration's parameter named for that module, ``<ID>_<key>`` (``SP1_rate``, ``H1_T``);
2. the parameter named for the quantity, shared by every module of the kind (``T`` or ``temp``
   for the heater; for pumps ``t_eq`` or ``time``, the pumping time in s);
3. for a pump's rate, the reaction's total flow ``$Q`` (mL/min) split by the reagents' ``ratio``
   among the streams fused with it: ``Q * ratio_i / sum of ratios``; its volume is then
   ``rate * t / 60``;
4. the module's documented default (symbols.py);

and otherwise the compile fails naming the symbol, the parameter and these places. Every value
taken from the configuration is its ``$variable``, so an optimised parameter stays optimised:
a bare formula compiles to exactly what the same formula with written vectors does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from maosic.language.errors import LanguageError
from maosic.language.expr import Bin, Expr, Num, Var, fold
from maosic.language.tree import ModuleRef, Transfer, Value

if TYPE_CHECKING:
    from maosic.language.config import ReactionConfig


@dataclass(frozen=True)
class Source:
    """Where one parameter of a bare module may come from: ``keys`` are the configuration
    parameter names (``{id}`` is the module id), tried in order."""

    keys: tuple[str, ...]


# ParamSpec.name -> where a bare module finds it. Keys with {id} belong to one module.
SOURCES: dict[tuple[str, str], Source] = {
    ("heater", "T"): Source(("{id}_T", "T", "temp")),
    ("heater", "dT/dt"): Source(("{id}_ramp", "ramp")),
    ("heater", "t_H"): Source(("{id}_t_H", "t_H")),
    ("pump", "rate"): Source(("{id}_rate",)),
    ("pump", "v_i"): Source(("{id}_v",)),
    ("pump", "t_i"): Source(("{id}_t_i", "t_i")),
    ("pump", "times"): Source(("{id}_times",)),
    ("valve", "open"): Source(("{id}_open",)),
}
TOTAL_FLOW = "Q"  # mL/min, split among fused bare pumps by ratio
PUMP_TIME = ("t_eq", "time")  # s, how long bare pumps run
_DEFAULT_T_I = 0.0  # a bare pump injects once and does not wait after it


def fill_bare(
    source: str,
    transfers: list[Transfer],
    others: list[ModuleRef],
    config: ReactionConfig | None,
    uses: dict[str, int],
    ratio_of: Callable[[Transfer], float],
) -> None:
    """Give every bare module its vector (in place); ``uses`` collects the $variables used,
    ``ratio_of`` is a stream's reagent ratio (1 without a reagent list)."""
    filler = _Filler(source, config, uses, ratio_of)
    bare_pumps = [t for t in transfers if t.module.bare]
    for t in bare_pumps:
        filler.pump(t, bare_pumps)
    for ref in others:
        if ref.bare:
            filler.generic(ref)


class _Filler:
    def __init__(
        self,
        source: str,
        config: ReactionConfig | None,
        uses: dict[str, int],
        ratio_of: Callable[[Transfer], float],
    ):
        self.source = source
        self.params = set(config.params) if config is not None else set()
        self.ratio_of = ratio_of
        self.uses = uses

    def lookup(self, ref: ModuleRef, keys: tuple[str, ...]) -> Expr | None:
        for key in keys:
            name = key.replace("{id}", ref.module_id)
            if name in self.params:
                self.uses.setdefault(name, ref.offset)
                return Var(name, ref.offset)
        return None

    def missing(self, ref: ModuleRef, param: str, places: list[str]) -> LanguageError:
        spec = ref.spec
        meaning = next((p for p in spec.params if p.name == param), None)
        what = f"{param} ({meaning.meaning}, {meaning.unit})" if meaning and meaning.unit else param
        listed = " or ".join(f"${p}" for p in places)
        return LanguageError.at(
            self.source,
            ref.offset,
            f"{_shown(ref)} is written without its parameters and nothing gives it {what}: "
            f"write {spec.signature()} or define {listed} in the configuration's param",
            kind="param-count",
        )

    def generic(self, ref: ModuleRef) -> None:
        values: list[Value] = []
        for param in ref.spec.params:
            if param.kind == "position":
                raise LanguageError.at(
                    self.source,
                    ref.offset,
                    f"{ref.text} needs its positions: write {ref.text}[sampler, cd] (names, or "
                    "the lab's station numbers 1 to 5)",
                    kind="param-count",
                )
            source = SOURCES.get((ref.spec.kind, param.name))
            found = self.lookup(ref, source.keys) if source else None
            if found is None and param.default is not None:
                found = Num(float(param.default), ref.offset)  # type: ignore[arg-type]
            if found is None:
                keys = source.keys if source else (f"{{id}}_{param.name}",)
                raise self.missing(ref, param.name, _names(keys, ref))
            values.append(found)
        ref.values, ref.bare = values, False

    def pump(self, t: Transfer, fused: list[Transfer]) -> None:
        ref = t.module
        rate = self.lookup(ref, SOURCES[("pump", "rate")].keys)
        if rate is None:
            rate = self.split_rate(t, fused)
        volume = self.lookup(ref, SOURCES[("pump", "v_i")].keys)
        if volume is None:
            seconds = self.lookup(ref, PUMP_TIME)
            if seconds is None:
                raise self.missing(ref, "v_i", [*_names(SOURCES[("pump", "v_i")].keys, ref),
                                                *PUMP_TIME])  # fmt: skip
            volume = fold(Bin("/", Bin("*", rate, seconds, ref.offset), Num(60.0, 0), 0))
        wait = self.lookup(ref, SOURCES[("pump", "t_i")].keys) or Num(_DEFAULT_T_I, ref.offset)
        times = self.lookup(ref, SOURCES[("pump", "times")].keys) or Num(1.0, ref.offset)
        ref.values, ref.bare = [volume, wait, rate, times], False

    def split_rate(self, t: Transfer, fused: list[Transfer]) -> Expr:
        ref = t.module
        total = self.lookup(ref, (TOTAL_FLOW,))
        if total is None:
            raise self.missing(
                ref, "rate", [*_names(SOURCES[("pump", "rate")].keys, ref), TOTAL_FLOW]
            )
        share = sum(self.ratio_of(other) for other in fused)
        mine = self.ratio_of(t)
        if share <= 0:
            raise LanguageError.at(
                self.source,
                ref.offset,
                "the fused reagents' ratios add up to 0, so the total flow cannot be split",
                kind="out-of-range",
            )
        # Q*ratio/sum, not Q*(ratio/sum): "$Q*2/6" reads better than "$Q*0.3333333333333333"
        scaled = Bin("*", total, Num(mine, ref.offset), ref.offset)
        return fold(Bin("/", scaled, Num(share, ref.offset), ref.offset))


def _names(keys: tuple[str, ...], ref: ModuleRef) -> list[str]:
    return [k.replace("{id}", ref.module_id) for k in keys]


def _shown(ref: ModuleRef) -> str:
    return f"the pump of this reagent ({ref.module_id})" if ref.implicit else ref.text
