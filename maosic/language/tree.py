"""Abstract syntax tree of a formula.

Nodes are small slotted classes; every node keeps the 0-based offset of the token that
introduced it so that semantic errors point at the exact column.
"""

from __future__ import annotations

from dataclasses import dataclass

from maosic.language.expr import Expr
from maosic.language.symbols import ModuleSpec


@dataclass(slots=True)
class Name:
    """A bare name inside a parameter vector, e.g. the robot position ``sampler``."""

    text: str
    offset: int


Value = Expr | Name


@dataclass(slots=True)
class ModuleRef:
    """``SP1[0.1, 0, 0.2]``: a module symbol with its number and parameter vector."""

    spec: ModuleSpec
    number: int | None
    text: str
    offset: int
    values: list[Value]
    vector_offset: int  # offset of '[' (or of the symbol when there is no vector)
    close_offset: int  # offset of ']' (or just after the symbol)
    # Written without a vector although it has required parameters (the paper's bare ``SP1``,
    # ``H``): the compiler takes them from the configuration (maosic/language/bare.py).
    bare: bool = False
    # No pump written at all (``R1 + R2``): reagent i goes to SP<i>, numbered by the compiler.
    implicit: bool = False

    @property
    def module_id(self) -> str:
        return self.spec.module_id(self.number)


@dataclass(slots=True)
class ReagentRef:
    """``R1[1, 0.4]``, ``R2^s[2, 0.1]`` or a reagent name from the configuration."""

    text: str
    offset: int
    number: int | None  # i of R_i; None for a named reagent
    solid: bool
    values: list[Value]
    vector_offset: int
    close_offset: int


@dataclass(slots=True)
class Transfer:
    """``reagent · pump``."""

    reagent: ReagentRef
    module: ModuleRef
    offset: int  # offset of the '·'


@dataclass(slots=True)
class Fusion:
    """``a + b + ...`` (flattened)."""

    parts: list[Node]
    offset: int
    plus_offsets: list[int]


@dataclass(slots=True)
class React:
    """``inner × env × ...``."""

    inner: Node
    envs: list[ModuleRef]
    times_offsets: list[int]
    offset: int


@dataclass(slots=True)
class Characterize:
    """``inner | step | ...``."""

    inner: Node
    steps: list[ModuleRef]
    pipe_offsets: list[int]
    offset: int


@dataclass(slots=True)
class Group:
    """A parenthesised sub-formula (kept so structure errors can name the parentheses)."""

    inner: Node
    offset: int


Node = Transfer | Fusion | React | Characterize | Group
