"""The durable first-in, first-out queue of synthesis requests.

Order is the ``seq`` column, taken from a counter row under a write lock, so it is the order in
which submissions were accepted even with several web workers. A worker claims a request with a
row lock (``SELECT ... FOR UPDATE SKIP LOCKED`` on MySQL/MariaDB) *and* a compare-and-set
``UPDATE ... WHERE status = <seen status>``: the lock keeps two MySQL workers from waiting on the
same row, and the compare-and-set is what makes the claim exclusive on SQLite too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from maosic.db.models import (
    ACTIVE_STATUSES,
    Counter,
    Reaction,
    Request,
    RequestStatus,
    User,
    utcnow,
)

SEQ_COUNTER = "request_seq"
# A running request whose worker has not written a heartbeat for this long was abandoned (the
# worker process died); another worker may take it over and resume it.
STALE_AFTER = timedelta(seconds=60)


class QueueError(ValueError):
    """A queue operation that cannot be done, with the reason for the user."""


def next_seq(session: Session) -> int:
    """Take the next FIFO number; the UPDATE write-locks the counter row until commit."""
    updated = session.execute(
        update(Counter).where(Counter.name == SEQ_COUNTER).values(value=Counter.value + 1)
    ).rowcount
    if not updated:
        start = session.scalar(select(func.max(Request.seq))) or 0
        session.add(Counter(name=SEQ_COUNTER, value=start + 1))
        session.flush()
    return int(session.scalar(select(Counter.value).where(Counter.name == SEQ_COUNTER)))


def enqueue(
    session: Session,
    reaction: Reaction,
    target: dict[str, Any],
    budget: int,
    optimizer: str,
    seed: int = 0,
    owner: User | None = None,
    lab_id: int | None = None,
) -> Request:
    if budget < 1:
        raise QueueError(f"budget must be at least 1 experiment, got {budget}")
    request = Request(
        seq=next_seq(session),
        reaction_id=reaction.id,
        owner_id=owner.id if owner else None,
        target=target,
        budget=budget,
        optimizer=optimizer,
        seed=seed,
        lab_id=lab_id,
        status=RequestStatus.QUEUED,
    )
    session.add(request)
    session.flush()
    return request


def position(session: Session, request: Request) -> int | None:
    """1 for the next request to run, 0 for one running, None for a finished one."""
    if request.status in (RequestStatus.RUNNING, RequestStatus.PAUSED):
        return 0
    if request.status != RequestStatus.QUEUED:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(Request)
        .where(Request.status == RequestStatus.QUEUED, Request.seq < request.seq)
    )
    return int(ahead or 0) + 1


def waiting(session: Session) -> list[Request]:
    """Active requests in the order they will be (or are being) served."""
    return list(
        session.scalars(
            select(Request).where(Request.status.in_(ACTIVE_STATUSES)).order_by(Request.seq)
        )
    )


@dataclass(frozen=True)
class Claim:
    request_id: int
    resumed: bool  # True when the request had run before (crash, pause) and continues
    lab_uid: str | None = None  # the fence the claim recorded (maosic.fencing)
    epoch: int | None = None


def _candidates(
    lab_id: int | None, now: datetime, stale_after: timedelta, lease: tuple[str, int] | None
):
    """Requests this worker may take, in FIFO order.

    A running request is taken over when its heartbeat is stale (its worker died), or at once
    when it was claimed on the same lab under an older lease epoch than ``lease``: holding a
    newer lease on that lab proves the former worker can no longer drive it.
    """
    takeover = (Request.status == RequestStatus.RUNNING) & (
        (Request.heartbeat_at.is_(None)) | (Request.heartbeat_at < now - stale_after)
    )
    if lease is not None:
        lab_uid, epoch = lease
        takeover |= (
            (Request.status == RequestStatus.RUNNING)
            & (Request.lease_lab == lab_uid)
            & (Request.lease_epoch < epoch)
        )
    query = (
        select(Request)
        .where(
            (Request.status == RequestStatus.QUEUED)
            | (Request.status == RequestStatus.PAUSED)
            | takeover
        )
        .order_by(Request.seq)
        .limit(1)
    )
    if lab_id is not None:
        query = query.where((Request.lab_id == lab_id) | Request.lab_id.is_(None))
    return query


def has_work(
    session: Session,
    lab_id: int | None = None,
    lab_uid: str | None = None,
    now: datetime | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> bool:
    """Whether a worker of this lab might claim something once it holds the lab's lease.

    Any running request of the lab counts: whoever holds its lease, the lease decides."""
    lease = (lab_uid, 2**62) if lab_uid is not None else None
    return (
        session.scalars(_candidates(lab_id, now or utcnow(), stale_after, lease)).first()
        is not None
    )


def claim_next(
    session: Session,
    worker: str,
    lab_id: int | None = None,
    now: datetime | None = None,
    stale_after: timedelta = STALE_AFTER,
    lease: tuple[str, int] | None = None,
) -> Claim | None:
    """Claim the request this worker should run next, or None when there is nothing to do.

    Abandoned running requests (stale heartbeat, or an older lease on this lab) and paused
    ones come first: they were accepted before anything still queued, so FIFO order says they
    finish first. ``lease`` (lab_uid, epoch): the lab lease this worker holds, recorded in the
    claim as its fence.
    """
    now = now or utcnow()
    candidates = _candidates(lab_id, now, stale_after, lease)
    if session.get_bind().dialect.name != "sqlite":
        candidates = candidates.with_for_update(skip_locked=True)
    found = session.scalars(candidates).first()
    if found is None:
        return None
    seen_status, seen_heartbeat = found.status, found.heartbeat_at
    seen_epoch = found.lease_epoch
    guard = (Request.id == found.id) & (Request.status == seen_status)
    guard &= (
        Request.heartbeat_at.is_(None)
        if seen_heartbeat is None
        else (Request.heartbeat_at == seen_heartbeat)
    )
    guard &= (
        Request.lease_epoch.is_(None) if seen_epoch is None else (Request.lease_epoch == seen_epoch)
    )
    lab_uid, epoch = lease if lease is not None else (None, None)
    values: dict[str, Any] = {
        "status": RequestStatus.RUNNING,
        "worker": worker,
        "heartbeat_at": now,
        "lab_id": found.lab_id if found.lab_id is not None else lab_id,
        "lease_lab": lab_uid,
        "lease_epoch": epoch,
        "failure_reason": None,  # a pause's reason no longer holds once the request runs again
    }
    if found.started_at is None:
        values["started_at"] = now
    taken = session.execute(
        update(Request).where(guard).values(**values).execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        return None  # another worker won the race; the caller simply looks again
    session.expire(found)
    return Claim(
        request_id=found.id,
        resumed=seen_status != RequestStatus.QUEUED,
        lab_uid=lab_uid,
        epoch=epoch,
    )


def cancel(session: Session, request: Request) -> Request:
    """Cancel a queued request now; a running one stops after the experiment in progress."""
    if request.status == RequestStatus.QUEUED:
        request.status = RequestStatus.CANCELLED
        request.finished_at = utcnow()
        request.stop_reason = "cancelled before it started"
    elif request.status in (RequestStatus.RUNNING, RequestStatus.PAUSED):
        request.cancel_requested = True
    else:
        raise QueueError(f"request {request.id} is already {request.status.value}")
    session.flush()
    return request
