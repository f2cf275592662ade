"""Hostile numbers and long values in JSON-RPC bodies (issue 17, item 5): the Dispatcher refuses
them at parse time with a message that says which number is out of range, and never quotes an
absurdly long input back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hardware_interface.jsonrpc import Dispatcher

ECHO_LIMIT = 80  # hardware_interface.jsonrpc.ECHO_LIMIT, spelled out so old code can run this

seen: list[Any] = []


def volume(volume_mL: float) -> float:
    seen.append(volume_mL)
    return volume_mL


def steps(n: int) -> int:
    seen.append(n)
    return n


def echo(value: Any = None) -> Any:
    seen.append(value)
    return value


@pytest.fixture
def rpc() -> Dispatcher:
    seen.clear()
    return Dispatcher({"volume": volume, "steps": steps, "echo": echo})


def call(rpc: Dispatcher, body: str) -> dict[str, Any]:
    reply = rpc.handle(body.encode())
    assert reply is not None
    return json.loads(reply)  # strict JSON: no NaN, no Infinity


@pytest.mark.parametrize(
    "number",
    ["1e400", "-1e400", "1E+999", "123456789012345678901234567890e300", "9" * 400 + ".0"],
)
def test_non_finite_float_is_refused_at_parse_time(rpc, number):
    reply = call(rpc, f'{{"jsonrpc":"2.0","method":"volume","params":[{number}],"id":1}}')
    error = reply["error"]
    assert error["code"] == -32700, reply
    assert "out of range" in error["data"] and "finite" in error["data"]
    assert len(error["data"]) < 200
    assert seen == []  # the handler never ran


@pytest.mark.parametrize(
    "number", [str(2**63), str(-(2**63) - 1), "1" * 25, "1" * 5000, "-" + "9" * 5000]
)
def test_integer_beyond_64_bits_is_refused_at_parse_time(rpc, number):
    reply = call(rpc, f'{{"jsonrpc":"2.0","method":"steps","params":{{"n":{number}}},"id":1}}')
    error = reply["error"]
    assert error["code"] == -32700, reply
    assert "out of range" in error["data"] and "64 bits" in error["data"]
    assert len(error["data"]) < 200  # the 5000 digits are not quoted back
    assert seen == []


def test_numbers_at_the_limits_still_pass(rpc):
    assert call(rpc, f'{{"jsonrpc":"2.0","method":"steps","params":[{2**63 - 1}],"id":1}}') == {
        "jsonrpc": "2.0",
        "result": 2**63 - 1,
        "id": 1,
    }
    assert call(rpc, f'{{"jsonrpc":"2.0","method":"steps","params":[{-(2**63)}],"id":2}}')[
        "result"
    ] == -(2**63)
    assert call(rpc, '{"jsonrpc":"2.0","method":"volume","params":[1.7e308],"id":3}')[
        "result"
    ] == pytest.approx(1.7e308)
    assert call(rpc, '{"jsonrpc":"2.0","method":"volume","params":[1e-400],"id":4}')["result"] == 0


def test_nested_hostile_number_is_refused_too(rpc):
    body = '{"jsonrpc":"2.0","method":"echo","params":{"value":{"a":[1,2,{"b":1e999}]}},"id":1}'
    assert call(rpc, body)["error"]["code"] == -32700
    assert seen == []


def test_hostile_number_as_id_is_refused(rpc):
    assert call(rpc, '{"jsonrpc":"2.0","method":"echo","id":1e400}')["error"]["code"] == -32700


def test_wrong_type_error_does_not_echo_a_huge_value(rpc):
    reply = call(rpc, json.dumps({"jsonrpc": "2.0", "method": "volume", "params": ["x" * 100000],
                                  "id": 1}))  # fmt: skip
    error = reply["error"]
    assert error["code"] == -32602 and "volume_mL" in error["data"]
    assert len(error["data"]) < 2 * ECHO_LIMIT


def test_unknown_method_and_parameter_names_are_not_echoed_whole(rpc):
    reply = call(rpc, json.dumps({"jsonrpc": "2.0", "method": "m" * 100000, "id": 1}))
    assert reply["error"]["code"] == -32601 and len(reply["error"]["data"]) <= ECHO_LIMIT
    reply = call(rpc, json.dumps({"jsonrpc": "2.0", "method": "volume",
                                  "params": {"v" * 100000: 1}, "id": 1}))  # fmt: skip
    assert reply["error"]["code"] == -32602 and len(reply["error"]["data"]) < 3 * ECHO_LIMIT
