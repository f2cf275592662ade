from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloud import create_app
from maosic.db.models import User
from maosic.db.passwords import hash_password
from maosic.db.seed import DEMO_USERS
from maosic.db.session import make_engine, session_factory, transaction
from tests.cloud.helpers import FakeCore, cspbbr3_reaction


@pytest.fixture
def log_key(tmp_path) -> Path:
    return tmp_path / "log.key"


@pytest.fixture
def fake_core() -> FakeCore:
    return FakeCore()


@functools.cache
def _demo_hashes() -> dict[str, str]:
    # Real scrypt hashes of the demo passwords, made once per test session: hashing costs
    # ~0.15 s each, and every test needs the three demo accounts.
    return {name: hash_password(password) for name, password, _ in DEMO_USERS}


@pytest.fixture
def web_sessions(db_url):
    """Sessions on the test database holding the demo accounts and the CsPbBr3 reaction."""
    engine = make_engine(db_url)
    factory = session_factory(engine)
    hashes = _demo_hashes()
    with transaction(factory) as session:
        for name, _, role in DEMO_USERS:
            session.add(User(username=name, password_hash=hashes[name], role=role))
        cspbbr3_reaction(session)
    yield factory
    engine.dispose()


@pytest.fixture
def app(db_url, web_sessions, fake_core, log_key) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": False,
            "CORE_URL": "http://127.0.0.1:9/",
            "CORE_TOKEN": "test-installation-token",
            "HARDWARE_URL": "http://127.0.0.1:9/",
            "LOG_KEY_FILE": str(log_key),
            "RPC_TIMEOUT_S": 2.0,
        }
    )
    app.extensions["maosic_web"].core = fake_core
    yield app
    app.extensions["maosic_web"].engine.dispose()


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


def login(client: FlaskClient, username: str, password: str | None = None):
    return client.post(
        "/login", data={"username": username, "password": password or f"{username}-password"}
    )


@pytest.fixture
def sim_daemon():
    """A real daemon on the simulated lab (with its lease), on a free loopback port."""
    from hardware_interface.server import start_daemon

    handle = start_daemon(sim=True, port=0, seed=0, speed=0.0, watchdog_s=0)
    yield handle
    handle.stop()


@pytest.fixture
def lab_app(db_url, web_sessions, fake_core, log_key, sim_daemon) -> Iterator[Flask]:
    """The web app whose hardware link is the real simulated daemon (the core stays fake)."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "lab-secret",
            "WTF_CSRF_ENABLED": False,
            "CORE_URL": "http://127.0.0.1:9/",
            "CORE_TOKEN": "test-installation-token",
            "HARDWARE_URL": sim_daemon.url,
            "LOG_KEY_FILE": str(log_key),
            "RPC_TIMEOUT_S": 10.0,
        }
    )
    app.extensions["maosic_web"].core = fake_core
    yield app
    app.extensions["maosic_web"].engine.dispose()
