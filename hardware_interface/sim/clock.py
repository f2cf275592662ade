"""The simulated lab's clock: real time, faster by a speed factor, or instant.

All physics of the simulated lab is a function of this clock, so a campaign can run in wall time
(speed 1), accelerated (``--speed 1000``) or with waits that cost no wall time at all (speed 0).
"""

from __future__ import annotations

import threading
import time


class SimClock:
    """Simulated seconds since the lab started.

    speed 0: ``sleep`` advances simulated time at once (instant mode; time only moves when someone
    sleeps). speed s > 0: simulated time runs s times faster than wall time, and ``sleep(x)``
    costs x / s wall seconds.  Thread-safe.
    """

    def __init__(self, speed: float = 0.0) -> None:
        if not speed >= 0.0 or speed == float("inf"):
            raise ValueError(f"SimClock: speed must be a finite number >= 0, got {speed!r}")
        self._speed = float(speed)
        self._lock = threading.Lock()
        self._offset_s = 0.0  # simulated seconds added by instant sleeps (and by advance())
        self._wall0 = time.monotonic()

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second; 0 means instant mode."""
        return self._speed

    def now(self) -> float:
        """Simulated time in seconds since the clock was created."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        if self._speed == 0.0:
            return self._offset_s
        return self._offset_s + (time.monotonic() - self._wall0) * self._speed

    def sleep(self, seconds: float) -> float:
        """Wait ``seconds`` of simulated time; returns the simulated time afterwards."""
        if not seconds >= 0.0:
            raise ValueError(f"SimClock.sleep: seconds must be >= 0, got {seconds!r}")
        if self._speed == 0.0:
            with self._lock:
                self._offset_s += float(seconds)
                return self._offset_s
        time.sleep(seconds / self._speed)
        return self.now()

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward without wall time, in any mode (tests, fast-forward)."""
        if not seconds >= 0.0:
            raise ValueError(f"SimClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._offset_s += float(seconds)
            return self._now_locked()
