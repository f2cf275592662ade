"""Run the fitter's many tiny BLAS/LAPACK calls on one thread.

numpy and scipy each bring an OpenBLAS with its own thread pool. For the 10-30 parameter
problems here, threads only add hand-off latency, and when the two pools (and other processes)
compete for cores each hand-off can cost a scheduler tick: measured 3x slower fits on a busy
2-core machine. ``single_threaded()`` limits both pools for the duration of a public call and
restores them afterwards; nested calls reuse the outer limit. If threadpoolctl (a scikit-learn
dependency) is missing it does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover - optional speed-up only
    threadpool_limits = None

_depth = 0


@contextmanager
def single_threaded() -> Iterator[None]:
    global _depth
    if threadpool_limits is None or _depth > 0:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _depth += 1
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        _depth -= 1
