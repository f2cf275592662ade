"""Property-based fuzzing of the web forms and JSON endpoints against a real core and daemon.

CSRF is switched off so the fuzzer reaches the form handling itself (CSRF is proven separately in
tests/cloud/test_auth.py). No input may produce a 5xx, and the site keeps serving.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cloud import create_app
from hardware_interface.server import start_daemon
from maosic.config import load_settings
from maosic.core import start_core
from maosic.db.models import Base, User
from maosic.db.seed import seed as seed_db
from maosic.db.session import make_engine, session_factory
from tests.fuzz.strategies import JSON_VALUES, NAMES, NUMBERS, SCALARS

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELD_TEXT = st.one_of(
    st.text(max_size=60),
    NAMES,
    NUMBERS.map(str),
    st.sampled_from(["stored", "formula", "upload", "1", "-1", "1e400", "NaN", "120"]),
)
FORMULAS = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "R1.SP1 + R2.SP2 x H[$T, 10, 60] | ABS-CD[100]",
            "(R1*SP1[0.1, 1, 0.15, 1] + R2*SP2) x H[$T] | ABS-CD",
            "R1·SP1 × H[" + "9" * 400 + "]",
            "((((((((((" * 30,
            "$" * 100,
        ]
    ),
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Flask, int]]:
    folder = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{folder / 'web.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    seed_db(url)
    with session_factory(engine)() as session:
        demo_id = session.scalars(select(User.id).where(User.username == "demo")).one()
    engine.dispose()
    daemon = start_daemon(sim=True, port=0, watchdog_s=0)
    conf = load_settings(
        environ={
            "MAOSIC_INSTANCE_PATH": str(folder),
            "MAOSIC_DATABASE_URL": url,
            "MAOSIC_HARDWARE_URL": daemon.url,
        }
    )
    core = start_core(conf, port=0, with_worker=False)  # requests stay queued
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "fuzz-secret",
            "WTF_CSRF_ENABLED": False,
            "CORE_URL": core.url,
            "CORE_TOKEN": core.settings.core_token,
            "HARDWARE_URL": daemon.url,
            "LOG_KEY_FILE": str(folder / "log.key"),
            "RPC_TIMEOUT_S": 10.0,
            "LOGIN_IP_MAX_FAILURES": 10_000,  # the per-address limit is tested in tests/cloud
        }
    )
    yield app, demo_id
    app.extensions["maosic_web"].engine.dispose()
    core.stop()
    daemon.stop()


@pytest.fixture(scope="module")
def admin(site) -> FlaskClient:
    client = site[0].test_client()
    reply = client.post("/login", data={"username": "admin", "password": "admin-password"})
    assert reply.status_code == 302
    return client


def _ok(reply: Any, where: str, route_exists: bool = True) -> None:
    assert reply.status_code < 500, (where, reply.status_code, reply.get_data(as_text=True)[:500])
    if route_exists:  # a 404 here would mean the fuzzer never reached the handler
        assert reply.status_code != 404, where


def _alive(client: FlaskClient) -> None:
    assert client.get("/queue").status_code == 200


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(
            ["source", "reaction_id", "name", "metric", "budget", "optimizer", "seed"]
            + [f"space-{i}-{k}" for i in range(5) for k in ("name", "low", "high", "dx")]
        ),
        FIELD_TEXT,
    ),
    formula=st.one_of(st.none(), FORMULAS),
    upload=st.one_of(st.none(), st.binary(max_size=300), JSON_VALUES.map(lambda v: repr(v))),
)
def test_submit_form_never_fails_the_server(admin, fields, formula, upload):
    data: dict[str, Any] = dict(fields)
    if formula is not None:
        data["formula"] = formula
    if upload is not None:
        raw = upload if isinstance(upload, bytes) else upload.encode()
        data["config_file"] = (io.BytesIO(raw), "reaction.json")
    _ok(admin.post("/requests/new", data=data, content_type="multipart/form-data"), "submit")
    _alive(admin)


@FUZZ
@given(body=st.one_of(JSON_VALUES, st.fixed_dictionaries({"formula": FORMULAS})))
def test_formula_check_endpoint(admin, body):
    _ok(admin.post("/api/formula/check", json=body), "formula check")
    _alive(admin)


@FUZZ
@given(
    body=st.one_of(
        JSON_VALUES,
        st.fixed_dictionaries(
            {
                "method": st.one_of(
                    st.sampled_from(
                        [
                            "pump.fill",
                            "pump.infuse",
                            "heater.set",
                            "robot.move",
                            "valve.set",
                            "system.stop",
                            "spectrometer.cd",
                            "__class__",
                            "system.wait",
                        ]
                    ),  # fmt: skip
                    SCALARS,
                ),
                "params": st.one_of(
                    st.dictionaries(
                        st.sampled_from(
                            [
                                "pump",
                                "reagent",
                                "volume_mL",
                                "rate_mL_min",
                                "setpoint_C",
                                "position",
                                "valve",
                                "open",
                                "seconds",
                                "wait_stable",
                            ]
                        ),  # fmt: skip
                        st.one_of(NUMBERS, NAMES, SCALARS),
                    ),
                    JSON_VALUES,
                ),
            }
        ),
    )
)
def test_manual_hardware_command_endpoint(admin, body):
    _ok(admin.post("/operator/hardware/command", json=body), "hardware command")
    _alive(admin)


@FUZZ
@given(
    username=st.one_of(st.text(max_size=80), NAMES),
    password=st.text(max_size=300),
    email=st.text(max_size=300),
    confirm=st.text(max_size=50),
)
def test_login_and_register_forms(site, username, password, email, confirm):
    client = site[0].test_client()
    _ok(client.post("/login", data={"username": username, "password": password}), "login")
    data = {"username": username, "email": email, "password": password, "confirm": confirm}
    _ok(client.post("/register", data=data), "register")
    assert client.get("/login").status_code == 200


@FUZZ
@given(
    role=FIELD_TEXT,
    active=st.one_of(st.none(), FIELD_TEXT),
    cancel_id=st.integers(min_value=0, max_value=2**40),
    current=st.text(max_size=40),
    new=st.text(max_size=40),
)
def test_admin_and_account_forms(site, admin, role, active, cancel_id, current, new):
    _, demo_id = site
    data = {f"u{demo_id}-role": role}
    if active is not None:
        data[f"u{demo_id}-active"] = active
    _ok(admin.post(f"/admin/users/{demo_id}", data=data), "admin role")
    _ok(admin.post(f"/requests/{cancel_id}/cancel"), "cancel", route_exists=False)
    form = {"current": current, "password": new, "confirm": new}
    _ok(admin.post("/account/password", data=form), "password")
    _alive(admin)
