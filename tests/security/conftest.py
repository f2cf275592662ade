"""Fixtures of the security and reliability tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack


def start_fast_stack(db_url: str, instance: Path, seed: int = 0) -> Stack:
    """Like tests/conftest.start_stack, but a paused request is retried every 0.3 s instead of
    5 s, so fault tests spend their time on faults, not on waiting."""
    from hardware_interface.server import start_daemon
    from maosic.config import load_settings
    from maosic.core import start_core
    from maosic.db.seed import seed as seed_db

    seed_db(db_url)
    daemon = start_daemon(sim=True, port=0, seed=seed, speed=0.0)
    settings = load_settings(
        environ={
            "MAOSIC_INSTANCE_PATH": str(instance),
            "MAOSIC_DATABASE_URL": db_url,
            "MAOSIC_HARDWARE_URL": daemon.url,
            "MAOSIC_WORKER_POLL_S": "0.05",
            "MAOSIC_RPC_RETRIES": "1",
            "MAOSIC_PAUSED_RETRY_S": "0.3",
        }
    )
    core = start_core(settings, port=0, with_worker=True)
    settings.core_url = core.url
    return Stack(settings, daemon, core, db_url)


@pytest.fixture
def fast_stack(db_url, tmp_path) -> Iterator[Stack]:
    running = start_fast_stack(db_url, tmp_path / "instance")
    yield running
    running.core.stop()
    running.daemon.stop()
