"""The core's side of the lab lease (hardware_interface.lease): take the lab before claiming a
request, renew it while the campaign runs, give it back afterwards.

A worker's holder name is stable across restarts of the same core (maosic.worker_identity), so
a core restarted after a crash takes its lab back at once (the daemon grants the same holder a
new epoch, which fences the dead incarnation); another core waits until the lease expires.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from maosic.hardware import (
    LAB_LEASED,
    LEASE_TAKEN,
    HardwareClient,
    HardwareError,
    HardwareLost,
    HardwareUnreachable,
)

log = logging.getLogger(__name__)


@dataclass
class Grant:
    """A lease the daemon granted: its epoch, the lab's identity and what recovery did."""

    epoch: int
    lab_uid: str
    recovered: list[str] = field(default_factory=list)


class LeaseRefused(RuntimeError):
    """Another holder has the lab; ``holder`` and ``expires_in_s`` say who and how long."""

    def __init__(self, message: str, holder: str | None, expires_in_s: float | None) -> None:
        super().__init__(message)
        self.holder = holder
        self.expires_in_s = expires_in_s


class LabLease:
    """One worker's lease on one lab; ``renewing()`` keeps it alive in a background thread."""

    def __init__(self, client: HardwareClient, holder: str, ttl_s: float) -> None:
        self.client = client
        self.holder = holder
        self.ttl_s = ttl_s
        self.grant: Grant | None = None
        self.lost: str | None = None  # why the lease was lost while renewing, if it was
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> Grant:
        """Take the lab; LeaseRefused when another holder has it. Other errors (daemon away,
        a module in fault that stopped the recovery) pass through as the client raised them."""
        try:
            answer = self.client.call("lease.acquire", holder=self.holder, ttl_s=self.ttl_s)
        except HardwareError as exc:
            if exc.code == LAB_LEASED:
                data = exc.data if isinstance(exc.data, dict) else {}
                raise LeaseRefused(str(exc), data.get("holder"), data.get("expires_in_s")) from exc
            raise
        self.grant = Grant(int(answer["epoch"]), str(answer["lab_uid"]), answer.get("recovered"))
        self.lost = None
        if self.grant.recovered:
            log.warning(
                "lease epoch %d: the lab was not idle; the daemon recovered it: %s",
                self.grant.epoch,
                "; ".join(self.grant.recovered),
            )
        return self.grant

    def start_renewing(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        # A third of the lifetime: two renewals may fail (a slow daemon) before it expires.
        while not self._stop.wait(self.ttl_s / 3.0):
            grant = self.grant
            if grant is None:
                return
            try:
                self.client.call("lease.renew", epoch=grant.epoch, ttl_s=self.ttl_s)
            except HardwareError as exc:
                if exc.code == LEASE_TAKEN:
                    self.lost = str(exc)
                    log.warning("lease epoch %d lost: %s", grant.epoch, exc)
                    return
                log.warning("lease renewal failed: %s", exc)
            except (HardwareUnreachable, HardwareLost) as exc:
                log.warning("lease renewal failed: %s", exc)

    def release(self) -> None:
        """Stop renewing and give the lab back (best effort: an expired lease frees itself)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        grant, self.grant = self.grant, None
        if grant is None or self.lost is not None:
            return
        try:
            self.client.call("lease.release", epoch=grant.epoch)
        except (HardwareError, HardwareUnreachable, HardwareLost) as exc:
            log.warning("could not release lease epoch %d: %s", grant.epoch, exc)
