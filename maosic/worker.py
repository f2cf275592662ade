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
from maosic.db.models import Request, RequestStatus, utcnow
from maosic.db.session import transaction
from maosic.hardware import HardwareClient
from maosic.phases import ExperimentTiming
from maosic.queue import claim_next

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
        """Claim and run one request; False when the queue had nothing to do."""
        with transaction(self.sessions) as session:
            claim = claim_next(session, self.name, self.lab_id, stale_after=self.stale_after)
        if claim is None:
            return False
        log.info(
            "worker %s runs request %d%s",
            self.name,
            claim.request_id,
            " (resumed)" if claim.resumed else "",
        )
        ctx = CampaignContext(
            sessions=self.sessions,
            client_factory=lambda hook: self.client(hook),
            cipher=self.cipher,
            worker=self.name,
            heartbeat_s=self.heartbeat_s,
            should_stop=self._stop.is_set,
            on_timing=self.on_timing,
        )
        try:
            outcome = Campaign(ctx, claim.request_id).run()
        except OperationalError:
            raise  # the database is away: the request stays claimed and resumes later
        except Exception as exc:
            # A bug must not leave the request looking alive, to be re-claimed and crash again.
            log.exception("request %d failed with an internal error", claim.request_id)
            self._fail(claim.request_id, f"internal error in the core: {exc!r}")
            return True
        if outcome.status == RequestStatus.PAUSED and not self._stop.is_set():
            # The lab is down: wait before trying the same request again instead of spinning.
            self._stop.wait(self.paused_retry_s)
        return True

    def _fail(self, request_id: int, reason: str) -> None:
        with transaction(self.sessions) as session:
            request = session.get(Request, request_id)
            request.status, request.failure_reason = RequestStatus.FAILED, reason
            request.stop_reason, request.finished_at = reason[:255], utcnow()

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once()
            except OperationalError as exc:
                log.warning("database unavailable (%s); retrying", exc.orig)
                busy = False
            except Exception:  # a bug must not kill the lab's only worker silently
                log.exception("worker %s: unexpected error", self.name)
                busy = False
            if not busy:
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
