"""Fixtures of the security and reliability tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack, start_stack


def start_fast_stack(db_url: str, instance: Path, seed: int = 0) -> Stack:
    """The ordinary stack, but a paused request is retried every 0.3 s instead of 5 s, so
    fault tests spend their time on faults, not on waiting."""
    return start_stack(
        db_url,
        instance,
        seed,
        settings_env={"MAOSIC_WORKER_POLL_S": "0.05", "MAOSIC_PAUSED_RETRY_S": "0.3"},
    )


@pytest.fixture
def fast_stack(db_url, tmp_path) -> Iterator[Stack]:
    running = start_fast_stack(db_url, tmp_path / "instance")
    yield running
    running.core.stop()
    running.daemon.stop()
