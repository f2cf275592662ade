"""Running one request to its end in-process (a Worker on a simulated daemon), and spying on
the optimizer's asks; shared by the optimizer-option and batch tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hardware_interface.server import start_daemon
from maosic.db.crypto import LogCipher
from maosic.optimize.base import Optimizer
from maosic.worker import Worker
from tests.core.rpc_helpers import cspbbr3_config


def start_sim_daemon() -> Any:
    """A real daemon on the simulated lab, instant (speed 0), on a free loopback port."""
    return start_daemon(sim=True, port=0, seed=1, speed=0.0, watchdog_s=0)


def config_with(**changes: Any) -> dict[str, Any]:
    """The CsPbBr3 example (T and C searched) with some top-level fields changed."""
    config = cspbbr3_config()
    config.update(changes)
    return config


def worker(sessions, daemon, key_dir: Path, **kwargs: Any) -> Worker:
    cipher = LogCipher.from_file(key_dir / "log.key")
    return Worker(sessions, daemon.url, cipher, poll_s=0.01, **kwargs)


class AskSpy:
    """Records every ``ask`` of one optimizer class: (n asked, points returned)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type[Optimizer]):
        self.calls: list[tuple[int, list[dict[str, float]]]] = []
        original = cls.ask

        def ask(opt: Optimizer, n: int = 1) -> list[dict[str, float]]:
            points = original(opt, n)
            self.calls.append((n, [dict(p) for p in points]))
            return points

        monkeypatch.setattr(cls, "ask", ask)

    @property
    def sizes(self) -> list[int]:
        return [len(points) for _, points in self.calls]

    @property
    def points(self) -> list[dict[str, float]]:
        return [p for _, points in self.calls for p in points]
