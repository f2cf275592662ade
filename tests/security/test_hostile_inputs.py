"""Hostile numbers and strings at the core's handler and the web site (issue 17, door 5).

Huge integers, numbers that overflow to infinity, NUL bytes and negative limits get the
documented errors (-32602 naming the field, -32700 for what is not JSON, HTTP 400/404): never
-32603, HTTP 500, a traceback or the database's SQL text. Runs on SQLite and MariaDB. The web
site's side is tests/cloud/test_hostile_web.py.
"""

from __future__ import annotations

import pytest
import requests

from maosic.config import load_settings
from maosic.core import start_core
from maosic.db.seed import seed as seed_db
from tests.core.rpc_helpers import TEST_CORE_TOKEN, cspbbr3_config

HUGE = 10**20  # beyond 64 bits: refused by the JSON-RPC parser itself (-32700, says which)
BIG = 2**62  # within 64 bits, far beyond every field: refused by the field's own check
SQL_WORDS = ("SELECT", "INSERT", "sqlalchemy", "pymysql", "Traceback", "OverflowError")


@pytest.fixture
def core(db_url, tmp_path):
    seed_db(db_url)
    env = {"MAOSIC_INSTANCE_PATH": str(tmp_path), "MAOSIC_DATABASE_URL": db_url,
           "MAOSIC_CORE_TOKEN": TEST_CORE_TOKEN}  # fmt: skip
    running = start_core(load_settings(environ=env), port=0, with_worker=False)
    yield running
    running.stop()


def _post(url: str, body: bytes | dict) -> dict:
    headers = {"Authorization": f"Bearer {TEST_CORE_TOKEN}", "Content-Type": "application/json"}
    if isinstance(body, dict):
        reply = requests.post(url, json=body, headers=headers, timeout=30)
    else:
        reply = requests.post(url, data=body, headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    for word in SQL_WORDS:
        assert word not in reply.text, reply.text
    return reply.json()


def _call(url: str, method: str, params: dict) -> dict:
    return _post(url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


CASES = [
    ("request.status", {"id": -1}, "id"),
    ("request.status", {"id": 0}, "id"),
    ("request.cancel", {"id": -(2**62)}, "id"),
    ("request.list", {"limit": BIG}, "limit"),
    ("request.list", {"limit": -1}, "limit"),
    ("request.list", {"limit": 0}, "limit"),
    ("request.submit", {"config": cspbbr3_config(), "seed": BIG}, "seed"),
    ("request.submit", {"config": cspbbr3_config(), "seed": -5}, "seed"),
    ("request.submit", {"config": cspbbr3_config(), "budget": BIG}, "budget"),
    ("request.submit", {"config": cspbbr3_config(), "budget": -1}, "budget"),
    ("request.submit", {"config": "/etc/passwd\x00"}, "config"),
    ("request.submit", {"config": cspbbr3_config(), "name": "a\x00b"}, "name"),
    ("request.submit", {"config": {**cspbbr3_config(), "name": "x\x00"}}, "config.name"),
    ("request.submit", {"config": cspbbr3_config(), "name": "n" * 500}, "name"),
    (
        "request.submit",
        {
            "formula": "R" + "9" * 5000 + "·SP1[0.2, 60, 0.1] | ABS-CD[100]",
            "space": {"T": {"bound": [90, 180]}},
        },
        "formula",
    ),  # fmt: skip
]


def test_out_of_range_and_nul_inputs_name_the_field(core):
    for method, params, field in CASES:
        reply = _call(core.url, method, params)
        error = reply.get("error")
        assert error is not None and error["code"] == -32602, (method, params, reply)
        assert error["data"]["field"] == field, (method, field, error)
        assert len(str(reply)) < 4000  # a 5000-digit input is not echoed back whole


def test_numbers_beyond_64_bits_are_refused_before_any_method_runs(core):
    for method, params in (
        ("request.status", {"id": HUGE}),
        ("request.list", {"limit": HUGE}),
        ("request.submit", {"config": cspbbr3_config(), "seed": HUGE}),
    ):
        error = _call(core.url, method, params)["error"]  # fmt: skip
        assert error["code"] == -32700 and "out of range" in error["data"], (method, error)
    assert _call(core.url, "request.status", {"id": 2**63 - 1})["error"]["code"] == -32040


def test_numbers_beyond_floats_are_not_json_here(core):
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "request.list", "params": {"limit": 1e400}}'
    error = _post(core.url, body)["error"]
    assert error["code"] in (-32700, -32602), error
    body = (
        b'{"jsonrpc": "2.0", "id": 2, "method": "request.submit", "params": '
        b'{"formula": "H[$T, 10, 20]", "space": {"T": {"bound": [0, 1e400]}}}}'
    )
    assert _post(core.url, body)["error"]["code"] in (-32700, -32602)
    # nothing was queued by any of it
    assert _call(core.url, "request.list", {})["result"] == []
