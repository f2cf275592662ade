"""Failed-login counting per client address, in memory (the web site's login form and the
core's Basic authentication each keep one).

The per-account lock-out (``users.locked_until``) stops guessing one password; this stops one
address from trying many accounts, each costing a password hash. Memory is bounded: old entries
expire with the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class FailureWindow:
    """At most ``max_failures`` failures per key within ``window_s`` seconds."""

    def __init__(self, max_failures: int, window_s: float):
        self.max_failures, self.window_s = max_failures, window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _trim(self, key: str, now: float) -> deque[float]:
        events = self._events.get(key, deque())
        while events and events[0] <= now - self.window_s:
            events.popleft()
        if events:
            self._events[key] = events
        else:
            self._events.pop(key, None)
        return events

    def blocked(self, key: str, now: float | None = None) -> bool:
        with self._lock:
            return len(self._trim(key, time.monotonic() if now is None else now)) >= (
                self.max_failures
            )

    def record(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(key, now)
            self._events.setdefault(key, deque()).append(now)
            if len(self._events) > 10_000:  # many addresses at once: drop the stalest
                for stale in sorted(self._events, key=lambda k: self._events[k][-1])[:1000]:
                    del self._events[stale]
