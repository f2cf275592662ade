"""Hostile arguments to every method of the daemon's table, over real HTTP (issue 17, item 5).

For each method, a call that would succeed has one argument at a time replaced by something
hostile: integers at and beyond 64 bits, numbers beyond a double (``1e400`` written raw in the
body, which Python's json reads as infinity), 5000-digit integers, NUL bytes, 100 kB strings,
negative values and wrong types. Only documented answers may come back: a parse error (-32700)
saying the number is out of range, -32602 naming the parameter, or one of the daemon's own
application codes (-32001 .. -32007); never -32603, never an HTTP 500, never invalid JSON, and
no error quoting the 100 kB back. A hostile number never moves a pump or the heater.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware_interface.server import DaemonHandle, start_daemon
from tests.fuzz.checks import DAEMON_CODES, check_reply, post, still_serving
from tests.fuzz.strategies import dumps, method_calls, param_names

# A valid call of every method that takes parameters (sim lab, cspbbr3 chemistry); the sweep
# below swaps one argument at a time for a hostile one. Waits are off so a call that succeeds
# costs no lab time.
BASELINE: dict[str, dict[str, Any]] = {
    "pump.fill": {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.1, "rate_mL_min": 1.0},
    "pump.infuse": {"pump": "SP1", "volume_mL": 0.01, "rate_mL_min": 0.1, "wait": False},
    "pump.withdraw": {"pump": "SP1", "volume_mL": 0.1, "rate_mL_min": 0.5, "wait": False},
    "pump.parallel": {
        "moves": [{"pump": "SP1", "volume_mL": 0.01, "rate_mL_min": 0.1}],
        "wait": False,
    },
    "pump.stop": {"pump": "SP1"},
    "pump.status": {"pump": "SP1"},
    "heater.set": {"setpoint_C": 120, "ramp_C_min": 10, "wait_stable": False, "timeout_s": 10},
    "heater.pid": {"kp": 1.0, "ki": 0.1, "kd": 0.0},
    "robot.move": {"position": "home"},
    # the fuzzed lab has no gripper: these answer "no gripper" (-32005) whatever the values, and
    # their range checks are swept over a lab with one in tests/hardware/test_vendor_wiring.py
    "gripper.move": {"position": 100, "speed": 255, "force": 128},
    "gripper.grip": {"closed": True, "speed": 255, "force": 128},
    "spectrometer.absorbance": {"integration_ms": 100},
    "spectrometer.cd": {"integration_ms": 100},
    "spectrometer.pl": {"integration_ms": 100, "excitation_nm": 300},
    "valve.set": {"valve": "V1", "open": True},
    "peristaltic.set": {"rpm": 10},
    "stepper.move": {"steps": 100, "speed_steps_s": 200},
    "system.wait": {"seconds": 1},
    "reagent.refill": {"reagent": "ODE", "added_mL": 1.0},
    "lease.acquire": {"holder": "fuzz", "ttl_s": 30, "take": False},
    "lease.renew": {"epoch": 1, "ttl_s": 30},
    "lease.release": {"epoch": 1},
}

LONG = "x" * 100_000
# Decoded values, sent with json.dumps.
HOSTILE_VALUES: list[Any] = [
    2**63 - 1, -(2**63), 2**62, 2**53 + 1, 1e308, -1e308, 5e-324, -1, -0.0, 0, -1e-9, 1e9, 1.5,
    "\x00", "SP1\x00", "\x00" * 1000, LONG, "", "nan", "SP1", [], {}, [1, 2], {"a": 1}, None,
    True, False,
]  # fmt: skip
# Raw JSON text, spliced into the body as written: what a lax or hostile client can send.
HOSTILE_TEXT: list[str] = [
    "1e400", "-1e400", "1E+999", "1" * 5000, "-" + "9" * 5000, str(2**63), str(-(2**63) - 1),
    "NaN", "Infinity", "-Infinity",
]  # fmt: skip
MAX_ERROR_CHARS = 600  # an error never quotes the 100 kB string back


def _body(method: str, params: dict[str, Any], raw: str | None = None) -> bytes:
    """The request; with `raw`, the value "@@" in params is replaced by that JSON text."""
    text = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    if raw is not None:
        text = text.replace('"@@"', raw)
    return text.encode()


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonHandle]:
    handle = start_daemon(sim=True, port=0, watchdog_s=0)
    yield handle
    handle.stop()


def _reset(session: requests.Session, handle: DaemonHandle) -> None:
    """Make the lab safe again (a call may have left a fault latched) in one batch."""
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "system.stop", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "system.reset_faults", "params": {}},
    ]
    session.post(handle.url, json=batch, timeout=30)
    # A lease.acquire of the sweep may have leased the lab: free it, or every later moving
    # call would be refused for the lease instead of being checked for its arguments.
    lease = handle.daemon.lease
    lease.release(lease.status()["epoch"])


def _check(response: requests.Response, param: str, hostile: str) -> dict[str, Any]:
    """The documented-answers check, plus: -32602 names the parameter, -32700 says why."""
    check_reply(response, DAEMON_CODES)
    reply = response.json()
    error = reply.get("error")
    if error is None:
        return reply
    assert len(json.dumps(error)) < MAX_ERROR_CHARS, (param, hostile, str(error)[:300])
    if error["code"] == -32602:
        assert param in str(error.get("data")), (param, hostile, error)
    if error["code"] == -32700 and hostile not in ("NaN", "Infinity", "-Infinity"):
        assert "out of range" in error["data"], (param, hostile, error)
    return reply


def _names() -> dict[str, list[str]]:
    """The daemon's method table: method -> parameter names."""
    handle = start_daemon(sim=True, port=0, watchdog_s=0)
    try:
        return param_names(handle.daemon.methods())
    finally:
        handle.stop()


NAMES = _names()


def _sweep() -> list[tuple[str, str, Any, str | None]]:
    """(method, parameter, hostile value, raw text or None) for every method and parameter."""
    cases: list[tuple[str, str, Any, str | None]] = []
    for method, params in sorted(NAMES.items()):
        for param in params:
            cases += [(method, param, value, None) for value in HOSTILE_VALUES]
            cases += [(method, param, "@@", raw) for raw in HOSTILE_TEXT]
    return cases


def test_every_method_with_parameters_has_a_baseline() -> None:
    assert {m for m, params in NAMES.items() if params} == set(BASELINE)


CASES = _sweep()


def test_every_method_refuses_hostile_arguments_with_documented_errors(daemon) -> None:
    """The whole table, one argument at a time (a few thousand calls, a few seconds)."""
    failures: list[str] = []
    with requests.Session() as session:
        for method, param, value, raw in CASES:
            params = dict(BASELINE.get(method, {}))
            params[param] = value
            label = raw if raw is not None else repr(value)[:40]
            response = post(session, daemon.url, _body(method, params, raw))
            try:
                _check(response, param, label)
            except AssertionError as exc:
                failures.append(f"{method} {param}={label}: {str(exc)[:300]}")
            _reset(session, daemon)
        still_serving(session, daemon.url, "system.status")
    assert not failures, "\n".join(failures[:20])


@pytest.mark.parametrize("key", ["pump", "volume_mL", "rate_mL_min"])
def test_pump_parallel_refuses_hostile_move_fields(daemon, key: str) -> None:
    with requests.Session() as session:
        for value, raw in [(v, None) for v in HOSTILE_VALUES] + [("@@", t) for t in HOSTILE_TEXT]:
            move = dict(BASELINE["pump.parallel"]["moves"][0], **{key: value})
            body = _body("pump.parallel", {"moves": [move], "wait": False}, raw)
            _check(post(session, daemon.url, body), "moves", raw or repr(value)[:40])
            _reset(session, daemon)


@pytest.mark.parametrize(
    ("method", "param"),
    [
        ("pump.fill", "volume_mL"),
        ("pump.fill", "rate_mL_min"),
        ("pump.withdraw", "volume_mL"),
        ("pump.infuse", "volume_mL"),
        ("pump.infuse", "rate_mL_min"),
        ("heater.set", "setpoint_C"),
        ("heater.set", "ramp_C_min"),
        ("heater.set", "timeout_s"),
    ],
)
@pytest.mark.parametrize("raw", ["1e400", "-1e400", "1" * 5000, str(2**64)])
def test_out_of_range_number_moves_nothing(daemon, method: str, param: str, raw: str) -> None:
    """1e400 used to reach the handler as infinity (answer: -32603 "reply not JSON")."""
    with requests.Session() as session:
        _reset(session, daemon)
        lab = daemon.lab
        before = ([lab.syringe_volume_mL(p) for p in lab.pump_ids], lab.heater_setpoint_C())
        params = dict(BASELINE[method], **{param: "@@"})
        reply = _check(post(session, daemon.url, _body(method, params, raw)), param, raw)
        assert reply["error"]["code"] == -32700, reply
        assert "out of range" in reply["error"]["data"]
        after = ([lab.syringe_volume_mL(p) for p in lab.pump_ids], lab.heater_setpoint_C())
        assert after == before


def test_heater_timeout_is_bounded(daemon) -> None:
    """A timeout of 1e308 s would hold a daemon thread for ever on a heater that never settles."""
    with requests.Session() as session:
        _reset(session, daemon)
        params = dict(BASELINE["heater.set"], timeout_s=1e308, wait_stable=True)
        reply = _check(post(session, daemon.url, _body("heater.set", params)), "timeout_s", "")
        assert reply["error"]["code"] == -32001, reply
        assert reply["error"]["data"]["param"] == "timeout_s"
        _reset(session, daemon)


# Hypothesis: random calls to real methods with one value replaced by raw hostile JSON text.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def hostile_calls(draw: st.DrawFn) -> tuple[str, bytes]:
    call = draw(method_calls(NAMES))
    raw = draw(st.sampled_from(HOSTILE_TEXT))
    params = call["params"]
    if isinstance(params, dict) and params:
        params[draw(st.sampled_from(sorted(params)))] = "@@"
    elif isinstance(params, list) and params:
        params[draw(st.integers(0, len(params) - 1))] = "@@"
    else:
        call["params"] = ["@@"]
    return raw, dumps(call).replace(b'"@@"', raw.encode(), 1)


@FUZZ
@given(case=hostile_calls())
def test_random_calls_with_hostile_numbers_are_parse_errors(daemon, case):
    raw, body = case
    with requests.Session() as session:
        response = post(session, daemon.url, body)
        check_reply(response, DAEMON_CODES)
        error = response.json()["error"]
        assert error["code"] == -32700, error
        if raw not in ("NaN", "Infinity", "-Infinity"):
            assert "out of range" in error["data"] and len(error["data"]) < 200
        still_serving(session, daemon.url, "system.status")
