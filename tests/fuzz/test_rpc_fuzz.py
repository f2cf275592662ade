"""Property-based fuzzing of both JSON-RPC servers over real HTTP.

Random bytes, random JSON, malformed requests, random batches, and random parameters to every
real method: only documented JSON-RPC errors come back (never -32603, never an HTTP 500, never
invalid JSON) and the server keeps serving afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware_interface.server import DaemonHandle, start_daemon
from maosic.config import load_settings
from maosic.core import Core, start_core
from maosic.db.models import Base
from maosic.db.seed import seed as seed_db
from maosic.db.session import make_engine
from maosic.rpc import method_table
from maosic.service import CoreService
from tests.core.rpc_helpers import TEST_CORE_TOKEN
from tests.fuzz.checks import CORE_CODES, DAEMON_CODES, check_reply, post, still_serving
from tests.fuzz.strategies import bodies, dumps, method_calls, param_names

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def daemon() -> Iterator[DaemonHandle]:
    handle = start_daemon(sim=True, port=0, watchdog_s=0.05)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def core(tmp_path_factory) -> Iterator[Core]:
    folder = tmp_path_factory.mktemp("core")
    url = f"sqlite:///{folder / 'fuzz.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    seed_db(url)
    conf = load_settings(
        environ={
            "MAOSIC_INSTANCE_PATH": str(folder),
            "MAOSIC_DATABASE_URL": url,
            "MAOSIC_CORE_TOKEN": TEST_CORE_TOKEN,
        }
    )
    # no worker: submitted requests stay queued, so fuzzing measures the handler alone
    running = start_core(conf, port=0, with_worker=False)
    yield running
    running.stop()


# Every core call is authenticated: the fuzzing is of what an authenticated caller can send.
CORE_AUTH = {"Authorization": f"Bearer {TEST_CORE_TOKEN}"}


def _daemon_names() -> dict[str, list[str]]:
    handle = start_daemon(sim=True, port=0, watchdog_s=0)
    try:
        return param_names(handle.daemon.methods())
    finally:
        handle.stop()


DAEMON_NAMES = _daemon_names()
# the table's signatures only: an instance that is never used to serve
CORE_NAMES = param_names(method_table(CoreService.__new__(CoreService)))


def _reset(handle: DaemonHandle) -> None:
    """Between examples: make the lab safe again so later calls reach deeper code."""
    for body in (
        {"jsonrpc": "2.0", "id": 1, "method": "system.stop", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "system.reset_faults", "params": {}},
    ):
        requests.post(handle.url, json=body, timeout=30)


@FUZZ
@given(body=bodies(sorted(DAEMON_NAMES), method_calls(DAEMON_NAMES)))
def test_daemon_answers_any_body_with_documented_errors(daemon, body):
    with requests.Session() as session:
        check_reply(post(session, daemon.url, body), DAEMON_CODES)
        still_serving(session, daemon.url, "system.status")


@FUZZ
@given(call=method_calls(DAEMON_NAMES))
def test_daemon_real_methods_with_random_params(daemon, call):
    with requests.Session() as session:
        check_reply(post(session, daemon.url, dumps(call)), DAEMON_CODES)
        still_serving(session, daemon.url, "system.status")
    _reset(daemon)


@FUZZ
@given(
    method=st.sampled_from(["pump.fill", "pump.infuse", "pump.withdraw", "heater.set"]),
    bad=st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 1e308]),
)
def test_daemon_never_executes_non_finite_or_absurd_numbers(daemon, method, bad):
    """NaN slips through `low <= x <= high` checks written the other way round: prove it cannot."""
    _reset(daemon)
    lab = daemon.lab
    before = ([lab.syringe_volume_mL(p) for p in lab.pump_ids], lab.heater_setpoint_C())
    params = {
        "pump.fill": {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": bad},
        "pump.infuse": {"pump": "SP1", "volume_mL": 0.01, "rate_mL_min": bad},
        "pump.withdraw": {"pump": "SP1", "volume_mL": bad, "rate_mL_min": 0.1},
        "heater.set": {"setpoint_C": bad, "wait_stable": False},
    }[method]
    reply = post(requests.Session(), daemon.url, dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    ))  # fmt: skip
    check_reply(reply, DAEMON_CODES)
    assert "error" in reply.json(), reply.json()  # a parse error (-32700) or a limit (-32001)
    assert ([lab.syringe_volume_mL(p) for p in lab.pump_ids], lab.heater_setpoint_C()) == before


@FUZZ
@given(body=bodies(sorted(CORE_NAMES), method_calls(CORE_NAMES)))
def test_core_answers_any_body_with_documented_errors(core, body):
    with requests.Session() as session:
        check_reply(post(session, core.url, body, CORE_AUTH), CORE_CODES)
        still_serving(session, core.url, "queue.list", CORE_AUTH)


@FUZZ
@given(call=method_calls(CORE_NAMES))
def test_core_real_methods_with_random_params(core, call):
    with requests.Session() as session:
        check_reply(post(session, core.url, dumps(call), CORE_AUTH), CORE_CODES)
        still_serving(session, core.url, "core.describe", CORE_AUTH)
