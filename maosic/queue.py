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
    Experiment,
    ExperimentStatus,
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


# -- time estimates ---------------------------------------------------------------------------
# Before anything has been timed: the MAOSIC paper's ~2 min per loop on the real lab.
DEFAULT_EXPERIMENT_S = 120.0
PACE_SAMPLE = 20  # recent finished experiments an estimate averages over
# A gap between two experiments this many times the typical one is a pause (the lab went away,
# a worker restarted), not the pace of the loop: that experiment counts by its own span.
PAUSE_FACTOR = 10.0
# The lab's clock runs this much faster than the wall clock: a simulated lab (a real lab's
# clock time of an experiment is always within its wall time).
SIMULATED_CLOCK_FACTOR = 1.5


@dataclass(frozen=True)
class Pace:
    """Time per experiment: ``wall_s`` on the wall clock (what a person waits), ``lab_s`` on
    the lab's clock when the lab reports it, ``measured`` False when nothing has been timed
    yet and ``wall_s`` is the paper's 2 min."""

    wall_s: float
    lab_s: float | None = None
    measured: bool = False

    @property
    def simulated(self) -> bool:
        """The lab's clock runs faster than the wall clock: a simulated lab's."""
        return self.lab_s is not None and self.lab_s > SIMULATED_CLOCK_FACTOR * self.wall_s


ASSUMED = Pace(DEFAULT_EXPERIMENT_S)


@dataclass(frozen=True)
class Estimate:
    """When an active request starts and finishes, in seconds from now.

    ``start_s`` adds up the remaining experiments of every request served before it, each
    at its own measured pace; ``run_s`` is its own remaining experiments at its pace. The
    ``lab_`` twins are the same sums on the lab's clock, given only when the lab's clock is
    a simulated one (on a real lab the two clocks agree), None when some pace is unknown."""

    start_s: float
    run_s: float
    pace: Pace
    lab_start_s: float | None = None
    lab_run_s: float | None = None
    measured: bool = False  # every pace that went into it was measured

    @property
    def eta_s(self) -> float:
        return self.start_s + self.run_s

    @property
    def lab_eta_s(self) -> float | None:
        if self.lab_start_s is None or self.lab_run_s is None:
            return None
        return self.lab_start_s + self.lab_run_s

    def fields(self) -> dict[str, Any]:
        """The estimate as request.status, queue.list and the web pages give it."""
        lab_eta = self.lab_eta_s  # only for a simulated lab: see the class docstring
        return {
            "eta_s": round(self.eta_s, 1),
            "estimated_start_s": round(self.start_s, 1),
            # what eta_s counts: the wall clock, measured on recent experiments or assumed
            "eta_clock": "wall clock",
            "eta_basis": "measured" if self.measured else "assumed",
            "experiment_s": round(self.pace.wall_s, 3),
            # a simulated lab's own clock, on which the run takes far longer than it waits
            "eta_lab_s": round(lab_eta, 1) if lab_eta is not None else None,
            "experiment_lab_s": (
                round(self.pace.lab_s, 1)
                if lab_eta is not None and self.pace.lab_s is not None
                else None
            ),
        }


Row = tuple[int, int, datetime | None, datetime | None, float | None]


def _pace_of(rows: list[Row]) -> Pace:
    """Mean time per experiment of finished rows (request id, number, started, finished, lab
    time).

    The wall time of an experiment is the gap since the previous one of the same request
    finished (the optimizer's turn and the bookkeeping count: they are time waited too), or
    its own span when it is the first or follows a pause. A request's experiment 1 also
    carries the lab's start-up (its init list), paid once: it counts only when nothing else
    has been timed."""
    rows = sorted((r for r in rows if r[2] and r[3]), key=lambda r: r[3])
    if not rows:
        return ASSUMED
    spans = [max((f - s).total_seconds(), 0.0) for _, _, s, f, _ in rows]
    gaps = []
    for i, (request_id, _, _, finished, _) in enumerate(rows):
        before = rows[i - 1] if i else None
        gap = (
            (finished - before[3]).total_seconds()
            if before is not None and before[0] == request_id
            else spans[i]
        )
        gaps.append(max(gap, spans[i]))
    typical = sorted(gaps)[len(gaps) // 2]
    wall = [
        g if g <= PAUSE_FACTOR * max(typical, 1e-3) else s for g, s in zip(gaps, spans, strict=True)
    ]
    # The oldest of a full sample is there only as the next one's predecessor.
    sample = range(1, len(rows)) if len(rows) > PACE_SAMPLE else range(len(rows))
    keep = [i for i in sample if rows[i][1] != 1] or list(sample)
    labs = [rows[i][4] for i in keep if rows[i][4] is not None]
    return Pace(
        wall_s=sum(wall[i] for i in keep) / len(keep),
        lab_s=sum(labs) / len(labs) if labs else None,
        measured=True,
    )


def pace(session: Session, request_id: int | None = None, lab_id: int | None = None) -> Pace:
    """The time per experiment of a request (its own recent experiments), else of its lab's
    recent experiments, else of anything's, else the paper's 2 min (``measured`` False)."""
    base = (
        select(
            Experiment.request_id,
            Experiment.number,
            Experiment.started_at,
            Experiment.finished_at,
            Experiment.lab_time_s,
        )
        .where(Experiment.finished_at.is_not(None))
        .order_by(Experiment.id.desc())
        .limit(PACE_SAMPLE + 1)  # one more: the first one's gap needs its predecessor
    )
    scopes = []
    if request_id is not None:
        scopes.append(base.where(Experiment.request_id == request_id))
    if lab_id is not None:
        scopes.append(
            base.join(Request, Request.id == Experiment.request_id).where(Request.lab_id == lab_id)
        )
    scopes.append(base)
    for query in scopes:
        rows = [tuple(r) for r in session.execute(query)]
        if rows:
            found = _pace_of(rows)  # type: ignore[arg-type]
            if found.measured:
                return found
    return ASSUMED


def estimates(session: Session) -> dict[int, Estimate]:
    """Start and finish estimates of every active request, by request id.

    The order served: what runs (or is paused) now, then the queue by ``seq``. A request
    waits for those before it that can take its lab (the same lab, or either not yet bound
    to one)."""
    active = waiting(session)
    if not active:
        return {}
    done = dict(
        session.execute(
            select(Experiment.request_id, func.count())
            .where(
                Experiment.request_id.in_([r.id for r in active]),
                Experiment.status.in_((ExperimentStatus.DONE, ExperimentStatus.FAILED)),
            )
            .group_by(Experiment.request_id)
        ).all()
    )
    lab_paces: dict[int | None, Pace] = {}

    def pace_for(request: Request) -> Pace:
        if request.status != RequestStatus.QUEUED:
            return pace(session, request.id, request.lab_id)
        if request.lab_id not in lab_paces:  # queued ones have no experiments of their own
            lab_paces[request.lab_id] = pace(session, None, request.lab_id)
        return lab_paces[request.lab_id]

    order = sorted(active, key=lambda r: (r.status == RequestStatus.QUEUED, r.seq))
    own: list[tuple[Request, Pace, int]] = []
    for request in order:
        remaining = max(request.budget - int(done.get(request.id, 0)), 0)
        own.append((request, pace_for(request), remaining))
    out: dict[int, Estimate] = {}
    for i, (request, p, remaining) in enumerate(own):
        ahead = [
            (q, qp, n)
            for q, qp, n in own[:i]
            if q.lab_id is None or request.lab_id is None or q.lab_id == request.lab_id
        ]
        if request.status != RequestStatus.QUEUED:
            ahead = []  # it is being served now
        simulated = p.simulated or any(qp.simulated for _, qp, _ in ahead)
        lab_known = p.lab_s is not None and all(qp.lab_s is not None for _, qp, _ in ahead)
        lab = simulated and lab_known
        out[request.id] = Estimate(
            start_s=sum(n * qp.wall_s for _, qp, n in ahead),
            run_s=remaining * p.wall_s,
            pace=p,
            lab_start_s=sum(n * (qp.lab_s or 0.0) for _, qp, n in ahead) if lab else None,
            lab_run_s=remaining * (p.lab_s or 0.0) if lab else None,
            measured=p.measured and all(qp.measured for _, qp, _ in ahead),
        )
    return out


# The estimate fields of a request that is not waiting or running (nothing left to estimate).
NO_ESTIMATE: dict[str, Any] = {
    "eta_s": None,
    "estimated_start_s": None,
    "eta_clock": None,
    "eta_basis": None,
    "experiment_s": None,
    "eta_lab_s": None,
    "experiment_lab_s": None,
}
