"""Where one experiment's software time goes: a wall-clock stopwatch per phase of the loop.

The campaign hands one :class:`ExperimentTiming` per finished experiment to an optional hook
(``CampaignContext.on_timing``); ``scripts/bench_campaign.py`` prints the breakdown. Timing costs
two ``perf_counter`` reads per phase, so it is always on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# Phases in the order the loop runs them; "other" is whatever the named ones leave over.
PHASES: tuple[str, ...] = (
    "stop check",  # read cancel flag, budget, goal and patience from the database
    "ask",  # the optimizer proposes the point
    "begin",  # the experiment row written as running (its own transaction)
    "compile",  # bind the point into the program's JSON-RPC calls
    "daemon",  # JSON-RPC round trips to the hardware daemon, incl. the simulator's work
    "progress",  # the current step written for the web site (at most once a second)
    "analysis",  # spectra -> fits -> features -> reward
    "tell",  # the optimizer learns the result
    "checkpoint",  # the optimizer's state serialised for the database
    "audit log",  # every daemon call and answer serialised and encrypted for the audit log
    "store",  # the result transaction: spectra, fits, features, audit log, state; committed
)


@dataclass
class ExperimentTiming:
    """Wall time of one experiment's phases, ms, from the stop check to the committed result."""

    number: int
    phases_ms: dict[str, float] = field(default_factory=dict)
    total_ms: float = 0.0
    round_trips: int = 0  # HTTP requests to the daemon (a batch counts once)
    calls: list[tuple[str, float]] = field(default_factory=list)  # (method, ms) per call

    @property
    def other_ms(self) -> float:
        return self.total_ms - sum(self.phases_ms.values())


class Stopwatch:
    """Accumulates wall time per phase name for the experiment in progress."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.phases_ms: dict[str, float] = {}

    def restart(self) -> None:
        self._started = time.perf_counter()
        self.phases_ms = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        begun = time.perf_counter()
        try:
            yield
        finally:
            elapsed = (time.perf_counter() - begun) * 1000
            self.phases_ms[name] = self.phases_ms.get(name, 0.0) + elapsed

    def add(self, name: str, ms: float) -> None:
        self.phases_ms[name] = self.phases_ms.get(name, 0.0) + ms

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000
