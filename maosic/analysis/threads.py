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
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional speed-up only
    ThreadpoolController = None

_depth = 0
# Finding the loaded BLAS libraries is the expensive part of threadpoolctl (~0.7 ms, more than
# a whole small fit), so it is done once; numpy's and scipy's BLAS are loaded by then, since
# the analyzer imports both before any fit runs.
_controller = None


def _limit_blas():  # type: ignore[no-untyped-def]
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


@contextmanager
def single_threaded() -> Iterator[None]:
    global _depth
    if ThreadpoolController is None or _depth > 0:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    _depth += 1
    try:
        with _limit_blas():
            yield
    finally:
        _depth -= 1
