"""Recursive-descent parser: formula text -> AST (``maosic.language.tree``).

Grammar and precedence are documented in docs/language.md.  Tightest first:
``·`` (transfer) > ``×`` (react under) > ``+`` (fusion) > ``|`` (characterization).
Module symbols are resolved against ``symbols.MODULES`` as they are read, so the parser also
rejects unknown symbols, symbols in the wrong role, wrong parameter counts, wrong value kinds
and literal values outside a module's range, each with the exact position.
"""

from __future__ import annotations

import difflib

from maosic.language.errors import LanguageError
from maosic.language.expr import ExprParser, Num, Var, fold
from maosic.language.lexer import Token, tokenize
from maosic.language.symbols import (
    MAX_INDEX,
    MODULES,
    ModuleSpec,
    ParamSpec,
    known_symbols,
    parse_module_name,
    parse_reagent_symbol,
    station_position,
)
from maosic.language.tree import (
    Characterize,
    Fusion,
    Group,
    ModuleRef,
    Name,
    Node,
    React,
    ReagentRef,
    Transfer,
    Value,
)

# What may follow a stream written without its pump (R1 + R2, (R1 + R2) | ABS-CD, R1 × H).
_AFTER_STREAM = frozenset({"PLUS", "PIPE", ")", "EOF", "TIMES"})

_ROLE_WORDS = {
    "transfer": "a pump that takes a reagent (right of '·')",
    "environment": "a reaction environment (right of '×')",
    "characterization": "a characterization step (right of '|')",
}
_ROLE_EXAMPLES = {
    "transfer": "R1·SP1[0.1, 0, 0.05]",
    "environment": "(R1·SP1[0.1, 0, 0.05] + R2·SP2[0.1, 0, 0.05]) × H[130, 10, 20]",
    "characterization": "(...) | ABS-CD[100]",
}


class FormulaParser(ExprParser):
    """Parses one formula; use :func:`parse_formula`."""

    def is_times(self, tok: Token) -> bool:
        return tok.kind == "TIMES" or (tok.kind == "NAME" and tok.text == "x")

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise LanguageError.at(self.source, 0, "the formula is empty: expected a reagent")
        node = self.parse_chain()
        tok = self.peek()
        if tok.kind != "EOF":
            if tok.kind == ")":
                raise LanguageError.at(self.source, tok.offset, "this ')' has no matching '('")
            raise self.fail(tok, "expected an operator (· + × |) or the end of the formula")
        return node

    def parse_chain(self) -> Node:
        inner = self.parse_sum()
        if self.peek().kind != "PIPE":
            return inner
        steps: list[ModuleRef] = []
        pipes: list[int] = []
        while self.peek().kind == "PIPE":
            pipes.append(self.advance().offset)
            steps.append(self.parse_module("characterization"))
        return Characterize(inner, steps, pipes, pipes[0])

    def parse_sum(self) -> Node:
        first = self.parse_product()
        if self.peek().kind != "PLUS":
            return first
        parts = [first]
        pluses: list[int] = []
        while self.peek().kind == "PLUS":
            pluses.append(self.advance().offset)
            parts.append(self.parse_product())
        return Fusion(parts, pluses[0], pluses)

    def parse_product(self) -> Node:
        inner = self.parse_primary()
        if not self.is_times(self.peek()):
            return inner
        envs: list[ModuleRef] = []
        times: list[int] = []
        while self.is_times(self.peek()):
            times.append(self.advance().offset)
            envs.append(self.parse_module("environment"))
        return React(inner, envs, times, times[0])

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "(":
            self.advance()
            self.nest(tok)
            inner = self.parse_chain()
            self.depth -= 1
            close = self.peek()
            if close.kind != ")":
                raise self.fail(close, f"expected ')' to close the '(' at column {_col(self, tok)}")
            self.advance()
            return Group(inner, tok.offset)
        if tok.kind == "PIPE":
            raise LanguageError.at(
                self.source,
                tok.offset,
                "nothing to measure: a characterization '|' needs a product on its left, "
                "e.g. (R1·SP1[...] + R2·SP2[...]) × H[...] | ABS-CD[100]",
                kind="nothing-to-measure",
            )
        if tok.kind in ("NAME", "STR"):
            return self.parse_transfer()
        raise self.fail(tok, "expected a reagent (R1, R2^s or a reagent name) or '('")

    def parse_transfer(self) -> Transfer:
        tok = self.peek()
        if tok.kind == "NAME":
            self._reject_module_as_reagent(tok)
        reagent = self.parse_reagent()
        dot = self.peek()
        if dot.kind not in ("DOT", "STAR"):
            if dot.kind not in _AFTER_STREAM and not self.is_times(dot):
                what = _short(reagent.text)
                raise self.fail(
                    dot, f"expected '·' (or '*' or '.') and a pump after the reagent {what}"
                )
            # The paper's R1 + R2, R1 × H: the reagent's own pump (SP<i>), numbered by the
            # compiler, which knows the configuration's reagent list.
            pump = ModuleRef(
                MODULES["SP"], None, "SP", reagent.offset, [], dot.offset, dot.offset, True, True
            )
            self._check_phase(reagent, pump)
            return Transfer(reagent, pump, reagent.offset)
        self.advance()
        module = self.parse_module("transfer")
        self._check_phase(reagent, module)
        return Transfer(reagent, module, dot.offset)

    def _check_phase(self, reagent: ReagentRef, module: ModuleRef) -> None:
        """A solid (R2^s) needs a module that doses solids; say which ones exist, if any."""
        if not reagent.solid or "solid" in module.spec.accepts:
            return
        dosers = sorted(s.symbol for s in MODULES.values() if "solid" in s.accepts)
        hint = (
            f"dose it with {' or '.join(dosers)}"
            if dosers
            else "this lab has no module that doses solids (a solid doser is added to the "
            "symbol table with accepts={'solid'}); dissolve it and use it as a liquid"
        )
        where = module.offset if not module.implicit else reagent.offset
        raise LanguageError.at(
            self.source,
            where,
            f"{'its pump' if module.implicit else module.text} ({module.spec.meaning}) cannot "
            f"take the solid reagent {_short(reagent.text)}^s: it handles liquids only; {hint}",
            kind="structure",
        )

    def module_name(self, tok: Token) -> tuple[ModuleSpec, int | None] | None:
        """parse_module_name, its errors placed in the formula."""
        try:
            return parse_module_name(tok.text)
        except LanguageError as exc:
            raise self.relocated(exc, tok) from None

    def relocated(self, exc: LanguageError, tok: Token) -> LanguageError:
        """An error positioned within one token's text, re-positioned in the formula."""
        return LanguageError.at(
            self.source, tok.offset + exc.column - 1, exc.message, kind=exc.kind
        )

    def _reject_module_as_reagent(self, tok: Token) -> None:
        found = self.module_name(tok)
        if found is None:
            return
        spec = found[0]
        if spec.kind == "spectrometer":
            example = _ROLE_EXAMPLES["characterization"].replace("ABS-CD[100]", tok.text)
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"nothing to measure: {tok.text} measures a product, so write it after '|', "
                f"e.g. {example}",
                kind="nothing-to-measure",
            )
        role = sorted(spec.roles)[0]
        raise LanguageError.at(
            self.source,
            tok.offset,
            f"{tok.text} is a module ({spec.meaning}), not a reagent: it is used as "
            f"{_ROLE_WORDS[role]}, e.g. {_ROLE_EXAMPLES[role]}",
            kind="structure",
        )

    def parse_reagent(self) -> ReagentRef:
        tok = self.advance()
        text = tok.text[1:-1] if tok.kind == "STR" else tok.text
        if not text.strip():
            raise LanguageError.at(self.source, tok.offset, "empty reagent name")
        is_r, number = False, None
        if tok.kind == "NAME":
            try:
                is_r, number = parse_reagent_symbol(text)
            except LanguageError as exc:
                raise self.relocated(exc, tok) from None
        solid = False
        if self.peek().kind == "^":
            self.advance()
            mark = self.peek()
            if mark.kind != "NAME" or mark.text != "s":
                raise self.fail(mark, "expected 's' after '^' (R2^s marks a solid reagent)")
            self.advance()
            solid = True
        vector_offset = self.peek().offset
        values, close = self.parse_vector()
        ref = ReagentRef(
            text, tok.offset, number if is_r else None, solid, values, vector_offset, close
        )
        self._check_reagent_vector(ref, is_r)
        return ref

    def _check_reagent_vector(self, ref: ReagentRef, generic: bool) -> None:
        if not ref.values and self.source[ref.vector_offset : ref.vector_offset + 1] != "[":
            return
        unit = "g" if ref.solid else "mL"
        amount = "w (g)" if ref.solid else "v (mL)"
        if generic:
            expected = 2
            shape = f"[i, {amount}]"
        else:
            expected = 1
            shape = f"[{amount}]"
        if len(ref.values) != expected:
            where = (
                ref.close_offset if len(ref.values) < expected else _offset(ref.values[expected])
            )
            raise LanguageError.at(
                self.source,
                where,
                f"reagent {_short(ref.text)} takes {expected} parameter(s) {shape}, "
                f"got {len(ref.values)}",
                kind="param-count",
            )
        if generic:
            index = ref.values[0]
            if (
                not isinstance(index, Num)
                or not 1 <= index.value <= MAX_INDEX
                or index.value != int(index.value)
            ):
                raise LanguageError.at(
                    self.source,
                    _offset(index),
                    f"the reagent index i of {_short(ref.text)} must be a whole number from 1 "
                    f"to {MAX_INDEX}",
                    kind="out-of-range",
                )
            if ref.number is not None and int(index.value) != ref.number:
                raise LanguageError.at(
                    self.source,
                    _offset(index),
                    f"{_short(ref.text)} has index {ref.number} but its vector says "
                    f"i = {int(index.value)}",
                    kind="out-of-range",
                )
            if ref.number is None:
                ref.number = int(index.value)
        amount_value = ref.values[-1]
        if isinstance(amount_value, Name):
            raise LanguageError.at(
                self.source,
                amount_value.offset,
                f"expected a number or $variable for the amount ({unit}) of {_short(ref.text)}",
                kind="syntax",
            )
        folded = fold(amount_value)
        if isinstance(folded, Num) and not 0.0 <= folded.value <= 50.0:
            raise LanguageError.at(
                self.source,
                amount_value.offset,
                f"amount {folded.text()} {unit} of {_short(ref.text)} is outside [0, 50] {unit}",
                kind="out-of-range",
            )

    def parse_module(self, role: str) -> ModuleRef:
        tok = self.peek()
        if tok.kind != "NAME" or tok.text == "x":
            raise self.fail(tok, f"expected {_ROLE_WORDS[role]}")
        self.advance()
        found = self.module_name(tok)
        if found is None:
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"unknown module symbol {_short(tok.text)!r}{_suggest(tok.text)}; expected "
                f"{_ROLE_WORDS[role]}",
                kind="unknown-symbol",
            )
        spec, number = found
        if role not in spec.roles:
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"{tok.text} ({spec.meaning}) cannot be used here: expected {_ROLE_WORDS[role]}",
                kind="structure",
            )
        vector_offset = self.peek().offset
        written = self.peek().kind == "["
        values, close = self.parse_vector()
        ref = ModuleRef(spec, number, tok.text, tok.offset, values, vector_offset, close)
        if not written and spec.required_count > 0:
            ref.bare = True  # the paper's bare symbol: parameters from the configuration
            return ref
        check_module_values(self.source, ref)
        return ref

    def parse_vector(self) -> tuple[list[Value], int]:
        """``[v, v, ...]`` -> (values, offset of ']'); no vector -> ([], offset after symbol)."""
        if self.peek().kind != "[":
            prev = self.tokens[self.pos - 1]
            return [], prev.offset + len(prev.text)
        self.advance()
        values: list[Value] = []
        if self.peek().kind == "]":
            return values, self.advance().offset
        while True:
            values.append(self.parse_value())
            tok = self.peek()
            if tok.kind == ",":
                self.advance()
                continue
            if tok.kind == "]":
                return values, self.advance().offset
            raise self.fail(tok, "expected ',' or ']' in the parameter vector")

    def parse_value(self) -> Value:
        tok = self.tokens[self.pos]
        kind = tok.kind
        if kind == "NUM" or kind == "VAR":
            # Fast path for the common single-token entry ("0.1", "$T"): skips four levels
            # of expression descent, which matters for the < 1 ms compile budget.
            if self.tokens[self.pos + 1].kind in (",", "]"):
                self.pos += 1
                if kind == "NUM":
                    return self.number(tok)
                name = tok.text[1:]
                self.var_uses.setdefault(name, tok.offset)
                return Var(name, tok.offset)
        if tok.kind == "NAME":
            nxt = self.tokens[self.pos + 1]
            if nxt.kind in (",", "]"):
                self.advance()
                return Name(tok.text, tok.offset)
        if tok.kind == "STR":
            self.advance()
            return Name(tok.text[1:-1], tok.offset)
        if tok.kind in ("]", ","):
            raise self.fail(tok, "expected a value (number, $variable or name)")
        self.ops = 0
        return self.parse_expr()


def check_module_values(source: str, ref: ModuleRef) -> None:
    """Parameter count, value kinds and literal ranges of one module use."""
    spec = ref.spec
    n = len(ref.values)
    lo, hi = spec.required_count, len(spec.params)
    if not lo <= n <= hi:
        count = f"{lo}" if lo == hi else f"{lo} to {hi}"
        if n > hi:
            where = _offset(ref.values[hi])
        else:
            where = ref.close_offset
        raise LanguageError.at(
            source,
            where,
            f"{ref.text} takes {count} parameter(s) {spec.signature()}, got {n}",
            kind="param-count",
        )
    for i, (value, param) in enumerate(zip(ref.values, spec.params, strict=False)):
        if param.kind == "position" and isinstance(value, Num):
            # CR[2, 4]: the lab's numbered stations stand for their names
            position = station_position(f"{value.value:g}") if value.value >= 1 else None
            if position is not None:
                ref.values[i] = value = Name(position, value.offset)
        check_value(source, ref.text, value, param)


def check_value(source: str, owner: str, value: Value, param: ParamSpec) -> None:
    """One vector entry against its ParamSpec (kind, and range when the value is literal)."""
    if param.kind == "position":
        if not isinstance(value, Name):
            raise LanguageError.at(
                source,
                value.offset,
                f"{param.name} of {owner} must be a position name, {param.describe_range()}, "
                f"or a station number 1 to {len(param.choices)}",
                kind="syntax",
            )
        if value.text not in param.choices:
            raise LanguageError.at(
                source,
                value.offset,
                f"unknown position {_short(value.text)!r} for {param.name} of {owner}; expected "
                f"{param.describe_range()}",
                kind="out-of-range",
            )
        return
    if isinstance(value, Name):
        raise LanguageError.at(
            source,
            value.offset,
            f"expected a number or $variable for {param.name} ({param.meaning}) of {owner}, "
            f"found the name {_short(value.text)!r} (did you mean ${_short(value.text)}?)",
            kind="syntax",
        )
    folded = fold(value)
    if isinstance(folded, Num):
        check_number(source, value.offset, owner, folded.value, param)


def check_number(source: str, offset: int, owner: str, x: float, param: ParamSpec) -> None:
    """A numeric value against its parameter's kind and range."""
    if param.kind == "boolean":
        if x not in (0.0, 1.0):
            raise LanguageError.at(
                source,
                offset,
                f"{param.name} of {owner} must be 0 or 1, got {x:g}",
                kind="out-of-range",
            )
        return
    if param.kind == "integer" and x != int(x):
        raise LanguageError.at(
            source,
            offset,
            f"{param.name} of {owner} must be a whole number, got {x:g}",
            kind="out-of-range",
        )
    low = -float("inf") if param.low is None else param.low
    high = float("inf") if param.high is None else param.high
    if not low <= x <= high:
        raise LanguageError.at(
            source,
            offset,
            f"{param.name} = {x:g} {param.unit} of {owner} is outside its range "
            f"{param.describe_range()} ({param.meaning})",
            kind="out-of-range",
        )


def _short(text: str, limit: int = 40) -> str:
    """User text quoted in a message, cut so a huge token is not echoed whole."""
    return text if len(text) <= limit else text[:limit] + "..."


def _offset(value: Value) -> int:
    return value.offset


def _col(parser: ExprParser, tok: Token) -> int:
    start = parser.source.rfind("\n", 0, tok.offset) + 1
    return tok.offset - start + 1


def _suggest(name: str) -> str:
    base = name.rstrip("0123456789_")
    close = difflib.get_close_matches(base.upper(), known_symbols(), n=1, cutoff=0.5)
    if base.upper() in MODULES:
        return f" (module symbols are case-sensitive: {base.upper()})"
    if close:
        return f" (did you mean {close[0]}?)"
    return ""


def parse_formula(source: str) -> Node:
    """Parse ``source`` into an AST; LanguageError with line/column on any bad input."""
    parser = FormulaParser(source, tokenize(source))
    return parser.parse()


__all__ = ["FormulaParser", "check_module_values", "check_value", "parse_formula"]
