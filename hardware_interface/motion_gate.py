"""The lab's motion gate: moving calls run side by side; a takeover or a reconciliation waits
for all of them and runs alone.

A lab's modules are independent machines: the pumps may infuse while the spectrometer scans
(a pipelined campaign sends both at once under one lease). What must not overlap any moving
call is a *takeover's recovery* (it empties syringes and homes the arm: a call of the former
holder still executing finishes first) and the journal's *reconciliation* (a moving call is
between its command and its journal note, so a comparison would report a false discrepancy).

So the gate is a reader/writer lock: moving calls hold it shared (``moving()``), the takeover
and the reconciliation hold it exclusively (``with gate:`` / ``acquire(blocking=False)``).
A waiting exclusive holder blocks new moving calls, so a busy holder cannot starve a takeover;
a thread that already holds the gate (shared or exclusive) re-enters without waiting, as the
RLock this replaces allowed. (fasteners' ReaderWriterLock has no non-blocking exclusive
acquire, which the reconciliation needs.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class MotionGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._moving: dict[int, int] = {}  # thread id -> depth of its shared holds
        self._owner: int | None = None  # the exclusive holder's thread id
        self._depth = 0  # the exclusive holder's re-entries
        self._waiting = 0  # exclusive holders waiting: new moving calls wait behind them

    @contextmanager
    def moving(self) -> Iterator[None]:
        """Hold the gate shared for one moving call."""
        me = threading.get_ident()
        with self._cond:
            if me != self._owner and me not in self._moving:
                while self._owner is not None or self._waiting:
                    self._cond.wait()
            self._moving[me] = self._moving.get(me, 0) + 1
        try:
            yield
        finally:
            with self._cond:
                self._moving[me] -= 1
                if not self._moving[me]:
                    del self._moving[me]
                    self._cond.notify_all()

    def acquire(self, blocking: bool = True) -> bool:
        """Hold the gate exclusively: once no moving call of another thread is in flight."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if not blocking and not self._free_for(me):
                return False
            self._waiting += 1
            try:
                while not self._free_for(me):
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("MotionGate.release: not held by this thread")
            self._depth -= 1
            if not self._depth:
                self._owner = None
                self._cond.notify_all()

    def _free_for(self, me: int) -> bool:
        others = any(thread != me for thread in self._moving)
        return self._owner is None and not others

    def busy(self) -> int:
        """How many threads hold the gate shared now (tests, status)."""
        with self._cond:
            return len(self._moving)

    def __enter__(self) -> MotionGate:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
