"""One lab, one driver (issue 18): several cores share a database and one lab; cores freeze,
die and restart; an operator reaches for the pumps. Real processes, real HTTP, and MariaDB
under scripts/test.sh (the ``db_url`` fixture runs each test on SQLite and on MariaDB)."""

from __future__ import annotations

import re
import sqlite3
import time

import requests
from sqlalchemy import select

from hardware_interface.errors import LEASE_HELD
from maosic.db.models import Experiment, ExperimentStatus, HardwareCommand, Request
from maosic.hardware import HardwareClient, HardwareError
from maosic.optimize.registry import restore_optimizer
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for
from tests.faults.processes import core_process, daemon_process

N_REQUESTS = 20
SMALL_BUDGET = 2


def _rows(sessions, request_id: int) -> list[Experiment]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Experiment)
                .where(Experiment.request_id == request_id)
                .order_by(Experiment.number)
            )
        )


def _counted(rows: list[Experiment]) -> list[Experiment]:
    return [e for e in rows if e.status in (ExperimentStatus.DONE, ExperimentStatus.FAILED)]


def test_two_cores_share_one_lab_without_interference(db_url, sessions, tmp_path):
    daemon = daemon_process(tmp_path).start()
    cores = [core_process(tmp_path, db_url, daemon.url, name=name).start() for name in ("a", "b")]
    try:
        ids = [
            rpc(
                cores[i % 2].url,
                "request.submit",
                config=cspbbr3_config(),
                budget=SMALL_BUDGET,
                seed=i,
            )["id"]  # fmt: skip
            for i in range(N_REQUESTS)
        ]
        # While the campaigns run, a person at the bench tries to pump by hand: refused, and
        # told who drives the lab.
        bench = HardwareClient(daemon.url, retries=0)
        deadline = time.monotonic() + 60
        refusal = None
        while refusal is None and time.monotonic() < deadline:
            try:
                bench.call("pump.withdraw", pump="SP3", volume_mL=0.01, rate_mL_min=1.0)
            except HardwareError as exc:
                if exc.code == LEASE_HELD:
                    refusal = exc
            time.sleep(0.01)
        assert refusal is not None, "no campaign ever held the lab"
        holder = r"leased to \S+@\S+:[0-9a-f]{8}:\d+ \(epoch \d+\)"
        assert re.search(holder, str(refusal)), str(refusal)
        finals = [wait_for(cores[0].url, i, {"done", "failed", "paused"}, 300) for i in ids]
    finally:
        for core in cores:
            core.stop()
        daemon.stop()
    assert all(f["status"] == "done" for f in finals), [(f["id"], f["stop_reason"]) for f in finals]
    first_experiment = []
    epochs: dict[int, set[int]] = {}
    with sessions() as session:
        requests_ = {r.id: r for r in session.scalars(select(Request))}
        for rid in ids:
            epochs[rid] = set(
                session.scalars(
                    select(HardwareCommand.lease_epoch).where(HardwareCommand.request_id == rid)
                )
            )
    for rid in ids:
        rows = _rows(sessions, rid)
        # run exactly once: the budget's experiments, every one measured, nothing redone
        assert [e.status for e in rows] == [ExperimentStatus.DONE] * SMALL_BUDGET, [
            (e.number, e.status, e.error) for e in rows
        ]
        assert requests_[rid].n_lab_failures == 0
        first_experiment.append(rows[0].id)
        # every call was sent under one lease, and no two requests shared one
        assert len(epochs[rid]) == 1 and None not in epochs[rid], epochs[rid]
    # both cores drove the lab, in turns (a worker pauses poll_s after a request)
    assert len({requests_[rid].worker for rid in ids}) == 2
    all_epochs = [next(iter(e)) for e in epochs.values()]
    assert len(set(all_epochs)) == N_REQUESTS
    # FIFO: the requests started in the order they were accepted
    assert first_experiment == sorted(first_experiment)
    assert all_epochs == sorted(all_epochs)


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _freeze_outside_a_sqlite_write(core, db_url: str) -> None:
    """SIGSTOP ``core``; on SQLite, at a moment it holds no write lock.

    A process frozen inside a SQLite write transaction keeps the whole file locked for as long
    as it is frozen, and nothing can end that (there is no server): a limit of SQLite, which is
    why several cores need MySQL/MariaDB. On MariaDB the core may be frozen anywhere."""
    core.freeze()
    if not db_url.startswith("sqlite"):
        return
    path = db_url.removeprefix("sqlite:///")
    for _ in range(200):
        probe = sqlite3.connect(path, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            core.thaw()
            time.sleep(0.02)
            core.freeze()
        finally:
            probe.close()
    raise AssertionError("the core always held the SQLite write lock")


def _claim(sessions, request_id: int) -> tuple[str | None, int | None]:
    with sessions() as session:
        row = session.execute(
            select(Request.worker, Request.lease_epoch).where(Request.id == request_id)
        ).one()
        return row.worker, row.lease_epoch


def test_a_frozen_core_past_its_lease_is_fenced_out(db_url, sessions, tmp_path):
    budget = 30
    fast_lease = {"MAOSIC_LEASE_TTL_S": "2", "MAOSIC_STALE_AFTER_S": "60"}
    daemon = daemon_process(tmp_path).start()
    first = core_process(tmp_path, db_url, daemon.url, extra_env=fast_lease, name="a").start()
    second = core_process(tmp_path, db_url, daemon.url, extra_env=fast_lease, name="b")
    try:
        rid = rpc(first.url, "request.submit", config=cspbbr3_config(), budget=budget, seed=3)["id"]
        _wait(lambda: rpc(first.url, "request.status", id=rid)["n_done"] >= 3, 120, "3 done")
        _freeze_outside_a_sqlite_write(first, db_url)
        frozen_at = time.monotonic()
        worker_a, epoch_a = _claim(sessions, rid)
        second.start()
        # the other core takes over once the lease expired (2 s), not after the 60 s heartbeat
        # (on MariaDB, a core frozen inside a write transaction holds its row locks until the
        # server ends that transaction, 15 s: maosic.db.session)
        _wait(lambda: _claim(sessions, rid)[0] != worker_a, 45, "the takeover")
        takeover_s = time.monotonic() - frozen_at
        worker_b, epoch_b = _claim(sessions, rid)
        assert epoch_b is not None and epoch_a is not None and epoch_b > epoch_a
        done_at_takeover = rpc(second.url, "request.status", id=rid)["n_done"]
        _wait(
            lambda: rpc(second.url, "request.status", id=rid)["n_done"] >= done_at_takeover + 2,
            120,
            "progress under the new holder",
        )
        first.thaw()  # wakes up believing it still runs the request
        final = wait_for(second.url, rid, {"done", "failed"}, 300)
        time.sleep(1.0)  # give the woken core time to try whatever it was about to do
    finally:
        first.stop()
        second.stop()
        daemon.stop()
    # taken over soon after the 2 s lease ended, before the 60 s heartbeat would have
    assert takeover_s < 40.0, takeover_s
    # ... and not before it ended: the daemon granted the new holder a free lab, took nothing
    daemon_log = (tmp_path / "daemon.log").read_text(encoding="utf-8", errors="replace")
    grants = re.findall(r"lease epoch \d+ granted to (\S+) for", daemon_log)
    assert worker_b in grants, grants
    assert "took the lab over" not in daemon_log, daemon_log[-3000:]
    assert final["status"] == "done", final
    rows = _rows(sessions, rid)
    counted = _counted(rows)
    assert len(counted) == budget == final["n_done"]
    points = [tuple(sorted(e.params.items())) for e in counted]
    assert len(set(points)) == len(points), "a point was measured twice"
    with sessions() as session:
        request = session.get(Request, rid)
        assert request.n_done == budget
        assert restore_optimizer(request.optimizer_state).n_told == len(counted)
        assert request.worker == worker_b
        epochs_of = {}
        for experiment_id, epoch in session.execute(
            select(HardwareCommand.experiment_id, HardwareCommand.lease_epoch).where(
                HardwareCommand.request_id == rid, HardwareCommand.experiment_id.is_not(None)
            )
        ):
            epochs_of.setdefault(experiment_id, set()).add(epoch)
    # every stored experiment was measured under one lease: none mixes the two cores' calls
    for experiment in counted:
        assert len(epochs_of[experiment.id]) == 1, (experiment.number, epochs_of[experiment.id])
    assert {next(iter(epochs_of[e.id])) for e in counted} <= {epoch_a, epoch_b}
    # the frozen core's log says it was stopped by the fence when it woke
    log_a = (tmp_path / "a.log").read_text(encoding="utf-8", errors="replace")
    assert "no longer current" in log_a or "no longer claimed" in log_a, log_a[-2000:]


def _fill_as(url: str, epoch: int) -> list[str]:
    """Leave reagent in the syringes under ``epoch``, as a core that dies right after its
    pump.fill calls would."""
    client = HardwareClient(url, retries=0)
    client.lease_epoch = epoch
    filled = []
    for pump, reagent in (("SP1", "Cs-oleate"), ("SP2", "PbBr2")):
        state = client.call("pump.status", pump=pump)
        room = state["capacity_mL"] - state["volume_mL"]
        if room > 0.05:
            client.call("pump.fill", pump=pump, reagent=reagent, volume_mL=round(room * 0.8, 3))
            filled.append(pump)
    client.close()
    return filled


def test_a_core_killed_after_a_fill_recovers_the_lab_and_loses_nothing(db_url, sessions, tmp_path):
    budget = 12
    daemon = daemon_process(tmp_path).start()
    core = core_process(tmp_path, db_url, daemon.url, name="a").start()
    lease_url = daemon.url
    restarts = []
    try:
        rid = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=budget, seed=9)["id"]
        for stop_at in (3, 7):
            _wait(lambda n=stop_at: rpc(core.url, "request.status", id=rid)["n_done"] >= n,
                  120, f"{stop_at} done")  # fmt: skip
            core.kill9()
            epoch = requests.post(
                lease_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "lease.status", "params": {}},
                timeout=5,
            ).json()["result"]["epoch"]
            assert _fill_as(daemon.url, epoch), "no syringe could be left loaded"
            restarted = time.monotonic()
            core.start()
            before = rpc(core.url, "request.status", id=rid)["n_done"]
            _wait(lambda b=before: rpc(core.url, "request.status", id=rid)["n_done"] > b,
                  30, "the next experiment after the restart")  # fmt: skip
            restarts.append(time.monotonic() - restarted)
        final = wait_for(core.url, rid, {"done", "failed", "paused"}, 300)
        # the next user's request is not affected by what the crashes left behind
        nxt = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=3, seed=10)["id"]
        final_next = wait_for(core.url, nxt, {"done", "failed", "paused"}, 120)
    finally:
        core.stop()
        daemon.stop()
    assert final["status"] == "done", final
    assert final_next["status"] == "done", final_next
    for request_id in (rid, nxt):
        rows = _rows(sessions, request_id)
        assert not [e for e in rows if e.error and "over-fill" in e.error], [
            (e.number, e.error) for e in rows
        ]
        assert not [e for e in rows if e.status == ExperimentStatus.FAILED]
    daemon_log = (tmp_path / "daemon.log").read_text(encoding="utf-8", errors="replace")
    assert daemon_log.count("recovery for") >= 2, daemon_log[-3000:]
    # taken back at once by the same core (its stable name), not after the lease's 30 s
    assert all(seconds < 25 for seconds in restarts), restarts


def test_an_operator_pauses_a_campaign_takes_the_lab_and_gives_it_back(db_url, sessions, tmp_path):
    """The deliberate way in: the operator pre-empts the campaign (take), pumps by hand, gives
    the lab back; the campaign pauses without counting anything and finishes its budget."""
    from tests.conftest import start_stack

    budget = 15
    stack = start_stack(
        db_url, tmp_path / "instance", settings_env={"MAOSIC_PAUSED_RETRY_S": "0.2"}
    )
    url = stack.core.url
    try:
        rid = rpc(url, "request.submit", config=cspbbr3_config(), budget=budget, seed=4)["id"]
        _wait(lambda: rpc(url, "request.status", id=rid)["n_done"] >= 2, 60, "2 done")
        operator = HardwareClient(stack.hardware_url, retries=0)
        grant = operator.call("lease.acquire", holder="operator:olga", ttl_s=60, take=True)
        assert grant["took_over"] and grant["took_over"].startswith("default@")
        operator.lease_epoch = grant["epoch"]
        paused = wait_for(url, rid, {"paused"}, 30)
        assert "operator:olga" in paused["failure_reason"], paused
        held = paused["n_done"]
        # by hand, while the campaign waits: the operator's calls run, nobody else's
        operator.call("pump.fill", pump="SP3", reagent="ODE", volume_mL=0.1)
        time.sleep(1.0)
        assert rpc(url, "request.status", id=rid)["status"] == "paused"
        assert rpc(url, "request.status", id=rid)["n_done"] == held
        operator.call("lease.release", epoch=grant["epoch"])
        final = wait_for(url, rid, {"done", "failed"}, 120)
    finally:
        stack.core.stop()
        stack.daemon.stop()
    assert final["status"] == "done", final
    rows = _rows(sessions, rid)
    counted = _counted(rows)
    assert len(counted) == budget == final["n_done"]
    points = [tuple(sorted(e.params.items())) for e in counted]
    assert len(set(points)) == len(points)
    # the experiments the operator interrupted (pipelined, up to two: the one measured and the
    # one synthesized beside it) are lab failures naming the operator, each measured later
    lost = [e for e in rows if e.status == ExperimentStatus.ABORTED]
    assert len(lost) <= 2
    for cut in lost:
        assert cut.failure_kind == "lab" and "operator:olga" in cut.error, cut.error
        assert cut.params in [e.params for e in counted if e.number > cut.number]
    assert final["n_lab_failures"] == len(lost)
