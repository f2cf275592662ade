"""The durable FIFO queue: order, exclusive claims under concurrency, cancel, takeover."""

import threading
from datetime import timedelta

from maosic.db.models import Reaction, Request, RequestStatus, utcnow
from maosic.db.session import transaction
from maosic.queue import STALE_AFTER, cancel, claim_next, enqueue, position, waiting


def _reaction(session) -> Reaction:
    reaction = Reaction(name="r", config={"type": "reaction"}, config_sha256="0" * 64)
    session.add(reaction)
    session.flush()
    return reaction


def _submit(sessions, n: int) -> list[int]:
    ids = []
    with transaction(sessions) as session:
        reaction = _reaction(session)
        for _ in range(n):
            ids.append(enqueue(session, reaction, {"metric": "m"}, 5, "random").id)
    return ids


def test_fifo_order_and_positions(sessions):
    ids = _submit(sessions, 3)
    with sessions() as session:
        assert [r.id for r in waiting(session)] == ids
        assert [position(session, session.get(Request, i)) for i in ids] == [1, 2, 3]
    claimed = []
    for _ in ids:
        with transaction(sessions) as session:
            claim = claim_next(session, "w1")
            claimed.append(claim.request_id)
            session.get(Request, claim.request_id).status = RequestStatus.DONE
    assert claimed == ids
    with transaction(sessions) as session:
        assert claim_next(session, "w1") is None


def test_concurrent_workers_never_take_the_same_request(sessions):
    ids = _submit(sessions, 12)
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while True:
            with transaction(sessions) as session:
                claim = claim_next(session, name)
            if claim is None:
                with sessions() as session:
                    if not any(r.status == RequestStatus.QUEUED for r in waiting(session)):
                        return
                continue
            with lock:
                taken.append((name, claim.request_id))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    claimed_ids = [rid for _, rid in taken]
    assert sorted(claimed_ids) == ids  # every request exactly once
    with sessions() as session:
        workers = {r.id: r.worker for r in waiting(session)}
    assert all(workers[rid] == name for name, rid in taken)


def test_cancel_queued_now_running_after_current_experiment(sessions):
    first, second = _submit(sessions, 2)
    with transaction(sessions) as session:
        claim_next(session, "w")  # first is running now
        cancel(session, session.get(Request, first))
        cancel(session, session.get(Request, second))
    with sessions() as session:
        running, queued = session.get(Request, first), session.get(Request, second)
        assert running.status == RequestStatus.RUNNING and running.cancel_requested
        assert queued.status == RequestStatus.CANCELLED and queued.finished_at is not None


def test_abandoned_running_request_is_taken_over_before_newer_ones(sessions):
    first, second = _submit(sessions, 2)
    with transaction(sessions) as session:
        claim_next(session, "dead-worker")
    with transaction(sessions) as session:  # heartbeat fresh: the first is still being worked on
        assert claim_next(session, "w2").request_id == second
        session.get(Request, second).status = RequestStatus.QUEUED  # put it back for the test
        session.get(Request, second).worker = None
    with transaction(sessions) as session:
        session.get(Request, first).heartbeat_at = utcnow() - STALE_AFTER - timedelta(seconds=1)
    with transaction(sessions) as session:
        claim = claim_next(session, "w2")
    assert claim.request_id == first and claim.resumed
