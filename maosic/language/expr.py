"""Small arithmetic expressions inside parameter vectors: ``$C*0.15/3.6``.

Grammar (see docs/language.md)::

    expr   = term { ("+" | "-") term } ;
    term   = unary { ("*" | "/") unary } ;
    unary  = ("-" | "+") unary | atom ;
    atom   = NUMBER | VARIABLE | "(" expr ")" ;

Parsed here by recursive descent and evaluated by walking the tree: never Python ``eval``.
Every node keeps its source offset so that a failed evaluation (division by zero, missing
binding) points at the exact character.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from maosic.language.errors import LanguageError
from maosic.language.lexer import Token, tokenize


class Expr:
    """Base class of expression nodes; ``offset`` is the node's 0-based source offset."""

    __slots__ = ("offset",)
    offset: int

    def evaluate(self, env: Mapping[str, float], source: str = "") -> float:
        raise NotImplementedError

    def collect(self, into: set[str]) -> None:
        """Add every $variable name (without '$') used by the expression to ``into``."""

    def text(self) -> str:
        """Canonical text: normalised spacing, minimal parentheses."""
        raise NotImplementedError

    def precedence(self) -> int:
        return 4

    def variables(self) -> set[str]:
        names: set[str] = set()
        self.collect(names)
        return names


class Num(Expr):
    __slots__ = ("value",)

    def __init__(self, value: float, offset: int) -> None:
        self.value = value
        self.offset = offset

    def evaluate(self, env: Mapping[str, float], source: str = "") -> float:
        return self.value

    def text(self) -> str:
        return format_number(self.value)


class Var(Expr):
    __slots__ = ("name",)

    def __init__(self, name: str, offset: int) -> None:
        self.name = name
        self.offset = offset

    def evaluate(self, env: Mapping[str, float], source: str = "") -> float:
        value = env.get(self.name)
        if value is None:
            raise LanguageError.at(
                source,
                self.offset,
                f"no value for ${self.name}: bind it (e.g. from the optimizer or the "
                "configuration's param defaults)",
                kind="missing-binding",
            )
        return float(value)

    def collect(self, into: set[str]) -> None:
        into.add(self.name)

    def text(self) -> str:
        return "$" + self.name


class Neg(Expr):
    __slots__ = ("operand",)

    def __init__(self, operand: Expr, offset: int) -> None:
        self.operand = operand
        self.offset = offset

    def evaluate(self, env: Mapping[str, float], source: str = "") -> float:
        return -self.operand.evaluate(env, source)

    def collect(self, into: set[str]) -> None:
        self.operand.collect(into)

    def precedence(self) -> int:
        return 3

    def text(self) -> str:
        inner = self.operand.text()
        if self.operand.precedence() < 3:
            inner = f"({inner})"
        return "-" + inner


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


class Bin(Expr):
    __slots__ = ("op", "left", "right", "_text")

    def __init__(self, op: str, left: Expr, right: Expr, offset: int) -> None:
        self.op = op
        self.left = left
        self.right = right
        self.offset = offset  # the operator's offset
        self._text: str | None = None  # nodes never change, so the canonical text is cached

    def evaluate(self, env: Mapping[str, float], source: str = "") -> float:
        a = self.left.evaluate(env, source)
        b = self.right.evaluate(env, source)
        op = self.op
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif b == 0.0:
            raise LanguageError.at(source, self.offset, "division by zero", kind="out-of-range")
        else:
            r = a / b
        if r - r != 0.0:  # inf or nan: 1e300*1e300 overflows
            raise LanguageError.at(
                source,
                self.offset,
                f"this expression overflows: {format_number(a)} {op} {format_number(b)} is "
                "not a finite number",
                kind="out-of-range",
            )
        return r

    def collect(self, into: set[str]) -> None:
        self.left.collect(into)
        self.right.collect(into)

    def precedence(self) -> int:
        return _PRECEDENCE[self.op]

    def text(self) -> str:
        if self._text is None:
            self._text = self._render()
        return self._text

    def _render(self) -> str:
        mine = _PRECEDENCE[self.op]
        left = self.left.text()
        if self.left.precedence() < mine:
            left = f"({left})"
        right = self.right.text()
        # Right operand of - and / needs brackets at equal precedence: a-(b-c) != a-b-c.
        rp = self.right.precedence()
        if rp < mine or (rp == mine and self.op in "-/"):
            right = f"({right})"
        return f"{left}{self.op}{right}"


def var_nodes(expr: Expr) -> list[Var]:
    """Every Var node of ``expr`` (in no particular order)."""
    found: list[Var] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Var):
            found.append(node)
        elif isinstance(node, Bin):
            stack.append(node.left)
            stack.append(node.right)
        elif isinstance(node, Neg):
            stack.append(node.operand)
    return found


def format_number(value: float) -> str:
    """Shortest faithful text of a number: ``60`` for 60.0, ``0.15`` for 0.15."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def fold(expr: Expr) -> Expr:
    """Replace a variable-free expression by its value (a Num at the same offset).

    Shallow on purpose: the parser folds bottom-up as it builds (see ``combine``), so only the
    top node can still be constant.
    """
    if isinstance(expr, Bin):
        return combine(expr.op, expr.left, expr.right, expr.offset)
    if isinstance(expr, Neg) and isinstance(expr.operand, Num):
        return Num(-expr.operand.value, expr.offset)
    return expr


def combine(op: str, left: Expr, right: Expr, offset: int) -> Expr:
    """``left op right``, computed now when both sides are numbers (and it is not x/0)."""
    if isinstance(left, Num) and isinstance(right, Num) and not (op == "/" and right.value == 0):
        a, b = left.value, right.value
        value = a + b if op == "+" else a - b if op == "-" else a * b if op == "*" else a / b
        return Num(value, left.offset)
    return Bin(op, left, right, offset)


def _value(expr: Expr) -> float:
    return expr.value if isinstance(expr, Num) else math.nan


def as_json_value(expr: Expr) -> float | int | str:
    """The value an instruction carries: a number when constant, else the canonical text."""
    expr = fold(expr)
    if isinstance(expr, Num):
        v = expr.value
        return int(v) if v == int(v) and abs(v) < 1e15 else v
    return expr.text()


# Limits that keep every tree walk (printing, evaluation) far below Python's recursion limit.
MAX_DEPTH = 50
MAX_OPERATORS = 100
# A number literal longer than this is refused before float() reads it (no real parameter
# needs 100 characters; "R" + 5000 digits was a traceback).
MAX_NUMBER_CHARS = 100


class ExprParser:
    """Recursive-descent parser of arithmetic expressions over a token list."""

    def __init__(self, source: str, tokens: list[Token]) -> None:
        self.source = source
        self.tokens = tokens
        self.pos = 0
        self.var_uses: dict[str, int] = {}  # $name -> offset of its first use
        self.depth = 0  # current nesting of '(' and unary signs
        self.ops = 0  # binary operators in the expression being read

    def nest(self, tok: Token) -> None:
        """Enter one nesting level; refuse absurd depths before Python's recursion limit."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LanguageError.at(
                self.source, tok.offset, f"nested too deeply (more than {MAX_DEPTH} levels)"
            )

    def count_op(self, tok: Token) -> None:
        self.ops += 1
        if self.ops > MAX_OPERATORS:
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"expression too long: at most {MAX_OPERATORS} operators in one value",
            )

    def number(self, tok: Token) -> Num:
        """A NUM token as a Num: refuses absurdly long literals and ones beyond a double."""
        text = tok.text
        if len(text) > MAX_NUMBER_CHARS:
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"number too long ({len(text)} characters, at most {MAX_NUMBER_CHARS})",
                kind="out-of-range",
            )
        value = float(text)
        if value - value != 0.0:  # inf (1e400): float() does not raise
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"number {text} is out of range: it is not a finite number",
                kind="out-of-range",
            )
        return Num(value, tok.offset)

    def combined(self, op: str, left: Expr, right: Expr, tok: Token) -> Expr:
        """combine(), refusing a constant that overflows when folded (1e300*1e300)."""
        node = combine(op, left, right, tok.offset)
        if isinstance(node, Num) and node.value - node.value != 0.0:
            raise LanguageError.at(
                self.source,
                tok.offset,
                f"this expression overflows: {format_number(_value(left))} {op} "
                f"{format_number(_value(right))} is not a finite number",
                kind="out-of-range",
            )
        return node

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "EOF":
            self.pos += 1
        return tok

    def fail(self, tok: Token, message: str, kind: str = "syntax") -> LanguageError:
        found = "the end of the text" if tok.kind == "EOF" else repr(tok.text)
        return LanguageError.at(self.source, tok.offset, f"{message}, found {found}", kind=kind)

    def parse_expr(self) -> Expr:
        left = self.parse_term()
        while self.peek().kind in ("PLUS", "MINUS"):
            op = self.advance()
            self.count_op(op)
            right = self.parse_term()
            left = self.combined("+" if op.kind == "PLUS" else "-", left, right, op)
        return left

    def parse_term(self) -> Expr:
        left = self.parse_unary()
        while self.peek().kind in ("STAR", "SLASH", "DOT"):
            op = self.peek()
            if op.kind == "DOT" and op.text != "·" and op.text != "⋅":
                # "." inside brackets is almost always a typo for a decimal point: say so.
                raise self.fail(op, "expected an arithmetic operator (+ - * /)")
            self.advance()
            self.count_op(op)
            right = self.parse_unary()
            if op.kind == "SLASH" and isinstance(right, Num) and right.value == 0.0:
                raise LanguageError.at(self.source, op.offset, "division by zero")
            left = self.combined("/" if op.kind == "SLASH" else "*", left, right, op)
        return left

    def parse_unary(self) -> Expr:
        tok = self.peek()
        if tok.kind == "MINUS" or tok.kind == "PLUS":
            self.advance()
            self.nest(tok)
            operand = self.parse_unary()
            self.depth -= 1
            return fold(Neg(operand, tok.offset)) if tok.kind == "MINUS" else operand
        return self.parse_atom()

    def parse_atom(self) -> Expr:
        tok = self.advance()
        if tok.kind == "NUM":
            return self.number(tok)
        if tok.kind == "VAR":
            name = tok.text[1:]
            self.var_uses.setdefault(name, tok.offset)
            return Var(name, tok.offset)
        if tok.kind == "(":
            self.nest(tok)
            inner = self.parse_expr()
            self.depth -= 1
            close = self.peek()
            if close.kind != ")":
                raise self.fail(close, "expected ')' to close the '(' of this expression")
            self.advance()
            return inner
        if tok.kind == "NAME":
            raise self.fail(tok, f"expected a number or a $variable (did you mean ${tok.text}?)")
        raise self.fail(tok, "expected a number, a $variable or '('")


def parse_expression(text: str) -> Expr:
    """Parse a whole string as one expression (used for instruction arguments in configs)."""
    parser = ExprParser(text, tokenize(text))
    if parser.peek().kind == "EOF":
        raise LanguageError.at(text, 0, "expected an expression, found nothing")
    expr = parser.parse_expr()
    tail = parser.peek()
    if tail.kind != "EOF":
        raise parser.fail(tail, "expected an operator (+ - * /) or the end of the expression")
    return expr
