"""One lab, one driver: the daemon grants its lab to one holder at a time.

A holder (a core's worker, an operator's manual session) takes the lease with
``lease.acquire`` and gets an *epoch*: a number that only grows, kept in the daemon's journal so
that it grows across daemon restarts too. Every call that moves or changes anything carries the
epoch in the HTTP header ``X-MAOSIC-Lease``; the daemon checks it inside the lab's motion gate
(``hardware_interface.motion_gate``: moving calls side by side, a takeover alone) just before the
call runs:

- the epoch is the current one: the call runs;
- it is an older one (the lease was taken over, e.g. from a core that froze past its expiry):
  refused with LEASE_LOST, whatever its sender believes;
- no epoch while someone holds the lease: refused with LEASE_HELD, naming the holder;
- no epoch while nobody holds it: the call runs (a bench test by hand; a holder who comes later
  finds the lab as that call left it, and recovers it if it is not idle).

Reads (``OPEN_METHODS``) need no lease, and neither does the emergency stop: stopping the lab
must never wait for a permission. The lease lasts ``ttl_s`` seconds unless renewed; a holder
renews it well before that. The same holder taking the lease again (a core restarted with its
stable identity) gets it at once with a new epoch, which fences its own former incarnation;
another holder must wait for the expiry unless it *takes* the lab deliberately (``take=True``,
an operator pausing a campaign).

Taking a lease on a lab that is not idle first runs the recovery routine of the daemon (empty
loaded syringes to waste, heater to safe, arm home), after the epoch was raised (so the former
holder is already fenced) and holding the motion gate alone (so every call of the former
holder that is still executing finishes first).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from hardware_interface import safety
from hardware_interface.errors import LEASE_HELD, LEASE_LOST, AppError
from hardware_interface.journal import Journal
from hardware_interface.jsonrpc import INVALID_PARAMS, RpcError
from hardware_interface.motion_gate import MotionGate

log = logging.getLogger(__name__)

LEASE_HEADER = "X-MAOSIC-Lease"
MODULE = "lease"  # the "module" named in lease errors
DEFAULT_TTL_S = 30.0
MIN_TTL_S, MAX_TTL_S = 1.0, 3600.0
MAX_HOLDER = 128

# Methods any caller may use whoever holds the lease: reads, the lease's own methods, the
# emergency stop, and booking a pour into a stock bottle (it moves nothing in the lab).
OPEN_METHODS = frozenset(
    {
        "system.describe",
        "system.status",
        "system.state",
        "system.stop",
        "pump.status",
        "heater.status",
        "robot.status",
        "gripper.status",
        "peristaltic.status",
        "stepper.status",
        "reagent.stock",
        "reagent.refill",
        "lease.acquire",
        "lease.renew",
        "lease.release",
        "lease.status",
    }
)

# The epoch the current HTTP request carries (None: no header), set by the server per request.
CALLER_EPOCH: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "maosic_lease_epoch", default=None
)


def parse_epoch(text: str | None) -> int | None | str:
    """The header's epoch; None when absent; an error text when it is not a small integer."""
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 18:
        return f"{LEASE_HEADER} must be the lease epoch (a positive integer)"
    return int(text)


class LeaseBook:
    """The lab's lease: holder, epoch and expiry, persisted in the daemon's journal.

    recover(holder) -> actions: run when a holder takes a lab that is not idle (the daemon's
    recovery routine); its list of what it did is returned to the new holder.
    """

    def __init__(
        self,
        journal: Journal,
        recover: Callable[[str], list[str]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.journal = journal
        self._recover = recover
        self._clock = clock
        self._lock = threading.Lock()
        # Held shared by each leased call, alone by a takeover's recovery: a takeover waits for
        # every call in flight (a pipelined holder may have two).
        self.motion = MotionGate()
        saved = journal.read("lease") or {}
        self._epoch = int(saved.get("epoch", 0) or 0)
        self._holder: str | None = saved.get("holder")
        self._expires_at = float(saved.get("expires_at", 0.0) or 0.0)  # wall clock: survives

    @property
    def lab_uid(self) -> str:
        return self.journal.lab_uid

    def _active(self, now: float) -> bool:
        return self._holder is not None and now < self._expires_at

    def _save(self) -> None:
        self.journal.write(
            lease={"epoch": self._epoch, "holder": self._holder, "expires_at": self._expires_at}
        )

    def _view(self, now: float) -> dict[str, Any]:
        active = self._active(now)
        return {
            "holder": self._holder if active else None,
            "epoch": self._epoch,
            "expires_in_s": round(self._expires_at - now, 3) if active else 0.0,
            "lab_uid": self.lab_uid,
        }

    def _held_error(self, now: float, wanted: str) -> AppError:
        left = self._expires_at - now
        return AppError(
            LEASE_HELD,
            MODULE,
            f"the lab is leased to {self._holder} (epoch {self._epoch}) for another "
            f"{left:.0f} s; {wanted}",
            holder=self._holder,
            epoch=self._epoch,
            expires_in_s=round(left, 3),
        )

    def _lost_error(self, epoch: int, now: float) -> AppError:
        holder = self._holder if self._active(now) else None
        now_held = f"now held by {holder}" if holder else "now free"
        return AppError(
            LEASE_LOST,
            MODULE,
            f"lease epoch {epoch} is no longer current (epoch {self._epoch}, {now_held}): "
            "the lab was taken over; nothing was done",
            holder=holder,
            epoch=self._epoch,
        )

    # -- JSON-RPC methods ----------------------------------------------------------------------
    def acquire(self, holder: str, ttl_s: float = DEFAULT_TTL_S, take: bool = False) -> dict:
        """Take the lab for `holder` for `ttl_s` s; `take` pre-empts another holder on purpose.

        Returns {"epoch", "holder", "expires_in_s", "lab_uid", "took_over", "recovered"}.
        """
        holder = _check_holder(holder)
        ttl_s = _check_ttl(ttl_s)
        with self._lock:
            now = self._clock()
            previous = self._holder if self._active(now) else None
            if previous is not None and previous != holder and not take:
                raise self._held_error(now, "wait for it to end or be released")
            self._epoch += 1
            self._holder, self._expires_at = holder, now + ttl_s
            epoch = self._epoch
            self._save()
        if previous is not None and previous != holder:
            log.warning("lease epoch %d: %s took the lab over from %s", epoch, holder, previous)
        else:
            log.info("lease epoch %d granted to %s for %.0f s", epoch, holder, ttl_s)
        recovered: list[str] = []
        if self._recover is not None:
            with self.motion:  # after the former holder's call in flight, if any
                try:
                    recovered = self._recover(holder)
                except Exception:
                    # The lab could not be made idle (a module in fault): nobody may drive it
                    # as it is. The raised epoch stays (the former holder remains fenced) but
                    # the lab is free again, for an operator to clear the fault.
                    with self._lock:
                        if self._epoch == epoch:
                            self._holder, self._expires_at = None, 0.0
                            self._save()
                    raise
        with self._lock:
            if self._epoch == epoch:  # recovery may have been long: the lease starts now
                self._expires_at = max(self._expires_at, self._clock() + ttl_s)
                self._save()
            view = self._view(self._clock())
        return {**view, "epoch": epoch, "took_over": previous, "recovered": recovered}

    def renew(self, epoch: int, ttl_s: float = DEFAULT_TTL_S) -> dict:
        """Extend the lease of `epoch` by `ttl_s` s from now; LEASE_LOST if it was taken over."""
        ttl_s = _check_ttl(ttl_s)
        with self._lock:
            now = self._clock()
            if epoch != self._epoch or self._holder is None:
                raise self._lost_error(epoch, now)
            # An expired lease nobody took since is still this holder's: renewing revives it.
            self._expires_at = now + ttl_s
            self._save()
            return self._view(now)

    def release(self, epoch: int) -> dict:
        """Give the lab back; a no-op (released false) for an epoch that is not current."""
        with self._lock:
            now = self._clock()
            if epoch != self._epoch or self._holder is None:
                return {**self._view(now), "released": False}
            log.info("lease epoch %d released by %s", epoch, self._holder)
            self._holder, self._expires_at = None, 0.0
            self._save()
            return {**self._view(now), "released": True}

    def status(self) -> dict:
        """{"holder" (None when free), "epoch", "expires_in_s", "lab_uid"}."""
        with self._lock:
            return self._view(self._clock())

    # -- the fence -----------------------------------------------------------------------------
    def check(self, epoch: int | None, method: str) -> None:
        """Refuse `method` unless `epoch` is the current lease (or no lease and none held)."""
        with self._lock:
            now = self._clock()
            if epoch is None:
                if self._active(now):
                    raise self._held_error(now, f"{method} needs the lease (lease.acquire)")
                return
            if epoch != self._epoch or self._holder is None:
                raise self._lost_error(epoch, now)

    def guard(self, methods: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
        """The method table with every method outside OPEN_METHODS fenced by the lease."""
        return {
            name: func if name in OPEN_METHODS else self._fenced(name, func)
            for name, func in methods.items()
        }

    def _fenced(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)  # keeps the signature and hints the dispatcher checks params by
        def fenced(*args: Any, **kwargs: Any) -> Any:
            with self.motion.moving():
                self.check(CALLER_EPOCH.get(), name)
                return func(*args, **kwargs)

        return fenced


def _check_holder(holder: Any) -> str:
    if (
        not isinstance(holder, str)
        or not holder.strip()
        or len(holder) > MAX_HOLDER
        or not holder.isprintable()
    ):
        raise RpcError(
            INVALID_PARAMS,
            "Invalid params",
            f"holder must be a printable name of 1 to {MAX_HOLDER} characters, "
            f"got {safety.shown(holder)}",
        )
    return holder.strip()


def _check_ttl(ttl_s: Any) -> float:
    safety.check_in_range(MODULE, "ttl_s", ttl_s, MIN_TTL_S, MAX_TTL_S, "s")
    return float(ttl_s)


class LeaseMethods:
    """lease.*: the JSON-RPC face of the LeaseBook."""

    def __init__(self, book: LeaseBook) -> None:
        self.book = book

    def lease_acquire(self, holder: str, ttl_s: float = DEFAULT_TTL_S, take: bool = False) -> dict:
        """Take the lab; {"epoch", ...}. LEASE_HELD names the holder when it is not free."""
        return self.book.acquire(holder, ttl_s, take)

    def lease_renew(self, epoch: int, ttl_s: float = DEFAULT_TTL_S) -> dict:
        return self.book.renew(epoch, ttl_s)

    def lease_release(self, epoch: int) -> dict:
        return self.book.release(epoch)

    def lease_status(self) -> dict:
        return self.book.status()
