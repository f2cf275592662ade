"""SimClock: instant mode, speed factor, thread safety, bad input."""

from __future__ import annotations

import threading
import time

import pytest

from hardware_interface.sim.clock import SimClock


def test_instant_mode_costs_no_wall_time() -> None:
    clock = SimClock(0.0)
    t0 = time.monotonic()
    for _ in range(1000):
        clock.sleep(3600.0)
    assert time.monotonic() - t0 < 0.5
    assert clock.now() == pytest.approx(3.6e6)


def test_speed_factor_scales_wall_time() -> None:
    clock = SimClock(1000.0)
    t0 = time.monotonic()
    after = clock.sleep(50.0)  # 50 ms of wall time
    wall = time.monotonic() - t0
    assert 0.04 <= wall < 0.5
    assert after >= 50.0
    assert clock.now() == pytest.approx(wall * 1000.0, rel=0.5)


def test_advance_jumps_in_any_mode() -> None:
    clock = SimClock(1.0)
    assert clock.advance(100.0) >= 100.0


def test_instant_sleeps_from_threads_add_up() -> None:
    clock = SimClock()

    def worker() -> None:
        for _ in range(1000):
            clock.sleep(1.0)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == pytest.approx(4000.0)


@pytest.mark.parametrize("speed", [-1.0, float("nan"), float("inf")])
def test_bad_speed_is_refused(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        SimClock(speed)


def test_negative_sleep_is_refused() -> None:
    with pytest.raises(ValueError, match="seconds"):
        SimClock().sleep(-1.0)
