"""Shared fixtures: a fresh database per test, on SQLite and (under scripts/test.sh) MariaDB.

``scripts/test.sh`` starts a throwaway MariaDB server and exports ``MAOSIC_TEST_MYSQL_URL``;
every test that takes ``db_url`` (or ``engine``/``sessions``) then runs once per backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from maosic.config import Settings, load_settings
from maosic.db.models import Base
from maosic.db.session import make_engine, session_factory

MYSQL_URL = os.environ.get("MAOSIC_TEST_MYSQL_URL", "")
BACKENDS = ["sqlite"] + (["mariadb"] if MYSQL_URL else [])

if os.environ.get("MAOSIC_TEST_REQUIRE_MYSQL") and not MYSQL_URL:
    raise RuntimeError("MAOSIC_TEST_REQUIRE_MYSQL is set but MAOSIC_TEST_MYSQL_URL is not")


def artifacts_dir() -> Path:
    """Where tests save screenshots and plots for a person to look at."""
    path = Path(os.environ.get("MAOSIC_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _fresh_mysql_database() -> tuple[str, str]:
    name = f"maosic_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(MYSQL_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    admin.dispose()
    return MYSQL_URL.rstrip("/") + f"/{name}?charset=utf8mb4", name


def _drop_mysql_database(name: str) -> None:
    admin = create_engine(MYSQL_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request, tmp_path) -> Iterator[str]:
    """URL of an empty database (no tables) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'maosic.sqlite3'}"
        return
    url, name = _fresh_mysql_database()
    try:
        yield url
    finally:
        _drop_mysql_database(name)


@pytest.fixture
def db_url(empty_db_url) -> str:
    """URL of a database holding the current schema."""
    engine = make_engine(empty_db_url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return empty_db_url


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine) -> sessionmaker[Session]:
    return session_factory(engine)


@dataclass
class Stack:
    """A whole MAOSIC on loopback: simulated daemon, core handler + worker, one database."""

    settings: Settings
    daemon: Any  # hardware_interface.server.DaemonHandle (``.lab`` is the SimLab)
    core: Any  # maosic.core.Core
    db_url: str

    @property
    def core_url(self) -> str:
        return self.core.url

    @property
    def hardware_url(self) -> str:
        return self.daemon.url


def start_stack(
    db_url: str,
    instance: Path,
    seed: int = 0,
    with_worker: bool = True,
    settings_env: dict[str, str] | None = None,
) -> Stack:
    """Seed the database, start a simulated daemon and a core over it; ``settings_env`` adds
    or overrides ``MAOSIC_*`` settings (e.g. a shorter retry period for fault tests)."""
    from hardware_interface.server import start_daemon
    from maosic.core import start_core
    from maosic.db.seed import seed as seed_db
    from tests.core.rpc_helpers import TEST_CORE_TOKEN

    seed_db(db_url)
    daemon = start_daemon(sim=True, port=0, seed=seed, speed=0.0)
    env = {
        "MAOSIC_INSTANCE_PATH": str(instance),
        "MAOSIC_DATABASE_URL": db_url,
        "MAOSIC_HARDWARE_URL": daemon.url,
        "MAOSIC_WORKER_POLL_S": "0.1",
        "MAOSIC_RPC_RETRIES": "1",
        "MAOSIC_CORE_TOKEN": TEST_CORE_TOKEN,
    }
    settings = load_settings(environ={**env, **(settings_env or {})})
    core = start_core(settings, port=0, with_worker=with_worker)
    settings.core_url = core.url
    return Stack(settings, daemon, core, db_url)


@pytest.fixture
def stack(db_url, tmp_path) -> Iterator[Stack]:
    """The whole stack on the test's database (SQLite and MariaDB), seeded with demo data."""
    running = start_stack(db_url, tmp_path / "instance")
    yield running
    running.core.stop()
    running.daemon.stop()
