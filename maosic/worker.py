"""The queue worker: claims the next request, runs its campaign, and repeats."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from maosic.campaign import Campaign, CampaignContext
from maosic.db.crypto import LogCipher
from maosic.db.models import RequestStatus, utcnow
from maosic.db.session import transaction
from maosic.fencing import ClaimLost, Fence
from maosic.hardware import HardwareClient, HardwareError, HardwareLost, HardwareUnreachable
from maosic.lab_lease import Grant, LabLease, LeaseRefused
from maosic.phases import ExperimentTiming
from maosic.queue import claim_next, has_work

log = logging.getLogger(__name__)


class Worker:
    """Runs requests one at a time, in FIFO order, against one hardware daemon."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        hardware_url: str,
        cipher: LogCipher,
        name: str | None = None,
        poll_s: float = 0.5,
        paused_retry_s: float = 5.0,
        token: str = "",
        ca_file: str = "",
        client_cert: str = "",
        rpc_timeout_s: float = 600.0,
        rpc_retries: int = 4,
        lab_id: int | None = None,
        heartbeat_s: float = 10.0,
        stale_after_s: float = 60.0,
        on_timing: Callable[[ExperimentTiming], None] | None = None,
        lease_ttl_s: float = 30.0,
        on_outcome: Callable[[int, RequestStatus], None] | None = None,
    ):
        self.sessions = sessions
        self.hardware_url = hardware_url
        self.cipher = cipher
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.poll_s = poll_s
        self.paused_retry_s = paused_retry_s
        self.lab_id = lab_id
        self.heartbeat_s = heartbeat_s
        self.stale_after = timedelta(seconds=stale_after_s)
        self.on_timing = on_timing
        self.lease_ttl_s = lease_ttl_s
        # told (request id, status) when a run ends: the owner's notifications (maosic/notify.py)
        self.on_outcome = on_outcome
        self._lab_uid: str | None = None  # the daemon's lab identity, once it answered
        self._client_args = dict(
            token=token,
            ca_file=ca_file,
            client_cert=client_cert,
            timeout_s=rpc_timeout_s,
            retries=rpc_retries,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def client(self, on_call=None) -> HardwareClient:
        return HardwareClient(self.hardware_url, on_call=on_call, **self._client_args)

    def run_once(self) -> bool:
        """Take the lab, claim and run one request; False when there was nothing to do."""
        if self._lab_uid is None:
            self._lab_uid = self._read_lab_uid()
        with self.sessions() as session:
            if not has_work(session, self.lab_id, self._lab_uid, stale_after=self.stale_after):
                return False
        lease = LabLease(self.client(), self.name, self.lease_ttl_s)
        try:
            grant: Grant | None = lease.acquire()
        except LeaseRefused as exc:
            log.debug("worker %s waits for the lab: %s", self.name, exc)
            lease.client.close()
            return False  # looked at again after poll_s, when the holder may be done
        except (HardwareError, HardwareUnreachable, HardwareLost) as exc:
            # The daemon is away or its recovery could not run (a module in fault): claim
            # without a lease; the campaign finds the same problem and pauses the request
            # with its reason, so the user sees why it waits.
            log.warning("worker %s: cannot take the lab's lease: %s", self.name, exc)
            grant = None
        try:
            return self._claim_and_run(lease, grant)
        finally:
            lease.release()
            lease.client.close()

    def _read_lab_uid(self) -> str | None:
        """The lab's identity from its daemon, so that requests running on this lab under
        another core's lease count as work here (taken over once that lease expires)."""
        client = HardwareClient(self.hardware_url, **{**self._client_args, "retries": 0})
        try:
            return str(client.call("lease.status")["lab_uid"])
        except (HardwareError, HardwareUnreachable, HardwareLost, KeyError, TypeError) as exc:
            log.debug("lab identity unknown for now: %s", exc)
            return None
        finally:
            client.close()

    def _claim_and_run(self, lease: LabLease, grant: Grant | None) -> bool:
        if grant is not None:
            self._lab_uid = grant.lab_uid
        with transaction(self.sessions) as session:
            claim = claim_next(
                session,
                self.name,
                self.lab_id,
                stale_after=self.stale_after,
                lease=(grant.lab_uid, grant.epoch) if grant is not None else None,
            )
        if claim is None:
            return False
        log.info(
            "worker %s runs request %d%s%s",
            self.name,
            claim.request_id,
            " (resumed)" if claim.resumed else "",
            f" under lease epoch {claim.epoch}" if claim.epoch is not None else " without a lease",
        )
        if grant is not None:
            lease.start_renewing()
        fence = Fence(claim.request_id, self.name, claim.lab_uid, claim.epoch)
        epoch = claim.epoch

        def client(hook):
            made = self.client(hook)
            made.lease_epoch = epoch
            return made

        ctx = CampaignContext(
            sessions=self.sessions,
            client_factory=client,
            cipher=self.cipher,
            worker=self.name,
            heartbeat_s=self.heartbeat_s,
            should_stop=self._stop.is_set,
            on_timing=self.on_timing,
            fence=fence,
            recovered=list(grant.recovered) if grant is not None else [],
        )
        try:
            outcome = Campaign(ctx, claim.request_id).run()
        except OperationalError:
            raise  # the database is away: the request stays claimed and resumes later
        except ClaimLost as exc:
            log.warning("worker %s stops request %d: %s", self.name, claim.request_id, exc)
            return True
        except Exception as exc:
            # A bug must not leave the request looking alive, to be re-claimed and crash again.
            log.exception("request %d failed with an internal error", claim.request_id)
            self._fail(fence, f"internal error in the core: {exc!r}")
            self._tell(claim.request_id, RequestStatus.FAILED)
            return True
        self._tell(claim.request_id, outcome.status)
        if outcome.status == RequestStatus.PAUSED and not self._stop.is_set():
            # The lab is down: wait before trying the same request again instead of spinning.
            lease.release()  # an operator may want the lab meanwhile
            self._stop.wait(self.paused_retry_s)
        return True

    def _tell(self, request_id: int, status: RequestStatus) -> None:
        if self.on_outcome is None:
            return
        try:
            self.on_outcome(request_id, status)
        except Exception:  # a notification problem must never stop the lab's worker
            log.exception("request %d: notifying its owner failed", request_id)

    def _fail(self, fence: Fence, reason: str) -> None:
        try:
            with transaction(self.sessions) as session:
                fence.hold(
                    session,
                    status=RequestStatus.FAILED,
                    failure_reason=reason,
                    stop_reason=reason[:255],
                    finished_at=utcnow(),
                )
        except ClaimLost:
            log.warning(
                "request %d: taken over before its failure could be written", fence.request_id
            )

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except OperationalError as exc:
                log.warning("database unavailable (%s); retrying", exc.orig)
            except Exception:  # a bug must not kill the lab's only worker silently
                log.exception("worker %s: unexpected error", self.name)
            # After a request, too: the lease was just given back, and a core waiting for the
            # lab gets its turn at the next request instead of this one taking it again at once.
            self._stop.wait(self.poll_s)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, name="maosic-worker", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the worker to stop after the current experiment, without waiting for it."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
