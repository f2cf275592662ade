"""The JSON-RPC 2.0 specification's own examples (section 7), run through the Dispatcher."""

from __future__ import annotations

import json

import pytest

from hardware_interface.jsonrpc import Dispatcher, RpcError


def subtract(minuend: float, subtrahend: float) -> float:
    return minuend - subtrahend


def total(*values: float) -> float:
    return sum(values)


def get_data() -> list:
    return ["hello", 5]


notified: list = []


def update(*values: int) -> None:
    notified.append(values)


def notify_hello(*values: int) -> None:
    notified.append(("hello", values))


def limit(volume_mL: float) -> float:
    raise RpcError(-32001, "limit exceeded", {"module": "SP1", "volume_mL": volume_mL})


def broken() -> None:
    raise ZeroDivisionError("boom")


@pytest.fixture
def rpc() -> Dispatcher:
    notified.clear()
    return Dispatcher(
        {
            "subtract": subtract,
            "sum": total,
            "get_data": get_data,
            "update": update,
            "notify_hello": notify_hello,
            "limit": limit,
            "broken": broken,
        }
    )


def call(rpc: Dispatcher, text: str):
    reply = rpc.handle(text.encode())
    return None if reply is None else json.loads(reply)


def test_positional_parameters(rpc):
    assert call(rpc, '{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}') == {
        "jsonrpc": "2.0",
        "result": 19,
        "id": 1,
    }
    assert call(rpc, '{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}') == {
        "jsonrpc": "2.0",
        "result": -19,
        "id": 2,
    }


def test_named_parameters(rpc):
    text = '{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":3}'
    assert call(rpc, text) == {"jsonrpc": "2.0", "result": 19, "id": 3}
    text = '{"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":4}'
    assert call(rpc, text) == {"jsonrpc": "2.0", "result": 19, "id": 4}


def test_notification_gets_no_reply_but_runs(rpc):
    assert call(rpc, '{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}') is None
    assert call(rpc, '{"jsonrpc": "2.0", "method": "foobar"}') is None
    assert notified == [(1, 2, 3, 4, 5)]


def test_non_existent_method(rpc):
    reply = call(rpc, '{"jsonrpc": "2.0", "method": "foobar", "id": "1"}')
    assert reply["error"]["code"] == -32601
    assert reply["error"]["message"] == "Method not found"
    assert reply["id"] == "1"


def test_invalid_json(rpc):
    reply = call(rpc, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]')
    assert reply["error"]["code"] == -32700
    assert reply["id"] is None


def test_invalid_request_object(rpc):
    reply = call(rpc, '{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
    assert reply["error"]["code"] == -32600
    assert reply["id"] is None


def test_batch_invalid_json(rpc):
    reply = call(
        rpc,
        '[{"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},'
        '{"jsonrpc": "2.0", "method"]',
    )
    assert reply["error"]["code"] == -32700 and reply["id"] is None


def test_empty_array(rpc):
    reply = call(rpc, "[]")
    assert isinstance(reply, dict)
    assert reply["error"]["code"] == -32600 and reply["id"] is None


def test_invalid_batch_but_not_empty(rpc):
    reply = call(rpc, "[1]")
    assert isinstance(reply, list) and len(reply) == 1
    assert reply[0]["error"]["code"] == -32600 and reply[0]["id"] is None


def test_invalid_batch(rpc):
    reply = call(rpc, "[1,2,3]")
    assert [r["error"]["code"] for r in reply] == [-32600] * 3
    assert all(r["id"] is None for r in reply)


def test_mixed_batch(rpc):
    reply = call(
        rpc,
        """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]""",
    )
    assert isinstance(reply, list) and len(reply) == 5
    by_id = {r["id"]: r for r in reply if r["id"] is not None}
    assert by_id["1"]["result"] == 7
    assert by_id["2"]["result"] == 19
    assert by_id["5"]["error"]["code"] == -32601
    assert by_id["9"]["result"] == ["hello", 5]
    invalid = [r for r in reply if r["id"] is None]
    assert len(invalid) == 1 and invalid[0]["error"]["code"] == -32600
    assert notified == [("hello", (7,))]


def test_batch_of_notifications_gets_nothing(rpc):
    text = (
        '[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},'
        '{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]'
    )
    assert rpc.handle(text.encode()) is None


def test_invalid_params_names_the_parameter(rpc):
    reply = call(
        rpc, '{"jsonrpc":"2.0","method":"subtract","params":{"minuend":"x","subtrahend":1},"id":7}'
    )
    assert reply["error"]["code"] == -32602
    assert "minuend" in reply["error"]["data"]
    reply = call(rpc, '{"jsonrpc":"2.0","method":"subtract","params":{"minuend":1},"id":8}')
    assert reply["error"]["code"] == -32602 and "subtrahend" in reply["error"]["data"]


def test_application_error_keeps_code_and_data(rpc):
    reply = call(rpc, '{"jsonrpc":"2.0","method":"limit","params":{"volume_mL":9},"id":1}')
    assert reply["error"] == {
        "code": -32001,
        "message": "limit exceeded",
        "data": {"module": "SP1", "volume_mL": 9},
    }


def test_handler_bug_is_internal_error(rpc):
    reply = call(rpc, '{"jsonrpc":"2.0","method":"broken","id":1}')
    assert reply["error"]["code"] == -32603 and "ZeroDivisionError" in reply["error"]["data"]


def test_wrong_version_and_bad_id_are_invalid(rpc):
    assert call(rpc, '{"jsonrpc":"1.0","method":"get_data","id":1}')["error"]["code"] == -32600
    assert call(rpc, '{"jsonrpc":"2.0","method":"get_data","id":[1]}')["error"]["code"] == -32600
    assert call(rpc, '{"jsonrpc":"2.0","method":"get_data","id":null}') == {
        "jsonrpc": "2.0",
        "result": ["hello", 5],
        "id": None,
    }


def test_reserved_names_refused():
    with pytest.raises(ValueError, match="rpc."):
        Dispatcher({"rpc.ping": get_data})


def test_hostile_bodies_are_parse_errors(rpc):
    assert call(rpc, "[" * 100000)["error"]["code"] == -32700
    reply = json.loads(rpc.handle(b"\xff\xfe{"))
    assert reply["error"]["code"] == -32700


def test_nan_result_becomes_internal_error():
    rpc = Dispatcher({"nan": lambda: float("nan")})
    reply = json.loads(rpc.handle(b'{"jsonrpc":"2.0","method":"nan","id":1}'))
    assert reply["error"]["code"] == -32603 and reply["id"] == 1
