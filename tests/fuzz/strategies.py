"""Hypothesis strategies shared by the fuzz tests: JSON values, JSON-RPC shapes, raw bodies."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

# Values a caller might plausibly send, mixed with hostile ones (huge, negative, NaN, wrong type).
NAMES = st.sampled_from(
    ["SP1", "SP2", "SP3", "SP4", "H1", "CR1", "SPEC1", "PL1", "V1", "V2", "Cs-oleate", "PbBr2",
     "ODE", "home", "sampler", "abs", "cd", "waste", "", "../../etc/passwd", "'; DROP TABLE x;--",
     "$(reboot)", "\x00", "é" * 300]
)  # fmt: skip
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -1, 1e-12, 0.05, 0.3, 120.0, 1e308, -0.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=40), NAMES)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
IDS = st.one_of(st.integers(), st.text(max_size=10), st.none(), st.floats(allow_nan=False))


def dumps(value: Any) -> bytes:
    """JSON text as a lax client would write it: NaN and Infinity included on purpose."""
    return json.dumps(value, allow_nan=True).encode()


def param_names(methods: Mapping[str, Callable[..., Any]]) -> dict[str, list[str]]:
    return {name: list(inspect.signature(func).parameters) for name, func in methods.items()}


def method_calls(names: dict[str, list[str]]) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON-RPC request to a real method with a random subset of its parameters (plus junk)."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        method = draw(st.sampled_from(sorted(names)))
        known = names[method]
        keys = draw(st.lists(st.sampled_from(known), unique=True)) if known else []
        params: Any = {k: draw(st.one_of(NUMBERS, NAMES, SCALARS, JSON_VALUES)) for k in keys}
        if draw(st.integers(0, 9)) == 0:
            params[draw(st.text(max_size=8))] = draw(SCALARS)
        if draw(st.integers(0, 9)) == 0:
            params = list(params.values())
        return {"jsonrpc": "2.0", "id": draw(st.integers(0, 10**6)), "method": method,
                "params": params}  # fmt: skip

    return build()


def request_shapes(names: list[str]) -> st.SearchStrategy[Any]:
    """Almost-valid JSON-RPC requests: wrong members, types, versions, unknown methods."""
    return st.fixed_dictionaries(
        {},
        optional={
            "jsonrpc": st.one_of(st.just("2.0"), SCALARS),
            "method": st.one_of(st.sampled_from(names), st.text(max_size=20), SCALARS),
            "params": JSON_VALUES,
            "id": IDS,
        },
    )


def bodies(names: list[str], calls: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Whole HTTP bodies: random bytes, random JSON, single requests and batches."""
    one = st.one_of(calls, request_shapes(names), JSON_VALUES)
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        one.map(dumps),
        st.lists(one, max_size=6).map(dumps),
    )
