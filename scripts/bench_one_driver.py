"""One lab, one driver (issue 18), measured: several cores, a frozen core, a core killed -9.

Each scenario runs real processes as production does (`python -m hardware_interface --sim`,
`run.py core` with an instance folder each), over one database, and prints what the issue's
acceptance names:

1. two cores, ``--requests`` requests of 2 experiments: requests done, experiments failed or
   redone (interference), FIFO order kept;
2. the core running a 30-experiment request frozen (SIGSTOP) past its 2 s lease while a second
   core starts, then resumed: seconds to the takeover, points measured twice, n_done vs the
   budget, optimizer checkpoint vs the rows;
3. the core killed -9 with reagent left in the syringes, twice in a 12-experiment request, and
   restarted: over-fill failures, recoveries the daemon logged, seconds from the restart to the
   next experiment.

    .venv/bin/python scripts/bench_one_driver.py                  # SQLite in a temp folder
    .venv/bin/python scripts/bench_one_driver.py --mariadb        # a throwaway MariaDB server

Exit status 1 when any acceptance figure fails. Uses the test suite's process helpers
(tests/faults/processes.py, tests/security/mariadb_server.py) so that what is measured is what
the tests run.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

from maosic.db.models import Base, Experiment, ExperimentStatus, Request  # noqa: E402
from maosic.db.session import make_engine, session_factory  # noqa: E402
from maosic.hardware import HardwareClient  # noqa: E402
from maosic.optimize.registry import restore_optimizer  # noqa: E402
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for  # noqa: E402
from tests.faults.processes import core_process, daemon_process  # noqa: E402


def _wait(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _fresh_database(tmp: Path, server_url: str | None) -> str:
    if server_url is None:
        url = f"sqlite:///{tmp / 'maosic.sqlite3'}"
    else:
        name = f"maosic_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        admin.dispose()
        url = server_url.rstrip("/") + f"/{name}?charset=utf8mb4"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


def _experiments(sessions, request_id: int) -> list[Experiment]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Experiment)
                .where(Experiment.request_id == request_id)
                .order_by(Experiment.number)
            )
        )


def two_cores(tmp: Path, db_url: str, n_requests: int) -> bool:
    sessions = session_factory(make_engine(db_url))
    daemon = daemon_process(tmp).start()
    cores = [core_process(tmp, db_url, daemon.url, name=n).start() for n in ("a", "b")]
    started = time.monotonic()
    try:
        ids = [
            rpc(cores[i % 2].url, "request.submit", config=cspbbr3_config(), budget=2, seed=i)["id"]
            for i in range(n_requests)
        ]
        finals = [wait_for(cores[0].url, i, {"done", "failed", "paused"}, 600) for i in ids]
    finally:
        for core in cores:
            core.stop()
        daemon.stop()
    wall = time.monotonic() - started
    failed = redone = 0
    firsts = []
    workers = set()
    for rid in ids:
        rows = _experiments(sessions, rid)
        failed += sum(e.status == ExperimentStatus.FAILED for e in rows)
        redone += sum(e.status == ExperimentStatus.ABORTED for e in rows)
        firsts.append(rows[0].id if rows else None)
        with sessions() as session:
            workers.add(session.get(Request, rid).worker)
    done = sum(f["status"] == "done" for f in finals)
    fifo = firsts == sorted(firsts)
    print(f"1. two cores, {n_requests} requests x 2 experiments ({wall:.1f} s wall)")
    print(f"   requests done: {done}/{n_requests}; run by {len(workers)} core(s)")
    print(f"   experiments failed: {failed}, lost to the lab and redone: {redone}")
    print(f"   FIFO kept: {fifo}")
    return done == n_requests and failed == 0 and redone == 0 and fifo


def frozen_core(tmp: Path, db_url: str) -> bool:
    budget = 30
    sessions = session_factory(make_engine(db_url))
    env = {"MAOSIC_LEASE_TTL_S": "2", "MAOSIC_STALE_AFTER_S": "60"}
    daemon = daemon_process(tmp).start()
    first = core_process(tmp, db_url, daemon.url, extra_env=env, name="a").start()
    second = core_process(tmp, db_url, daemon.url, extra_env=env, name="b")

    def claim():
        with sessions() as session:
            return session.execute(
                select(Request.worker, Request.lease_epoch).where(Request.id == rid)
            ).one()

    try:
        rid = rpc(first.url, "request.submit", config=cspbbr3_config(), budget=budget, seed=3)["id"]
        _wait(lambda: rpc(first.url, "request.status", id=rid)["n_done"] >= 3, 120, "3 done")
        first.freeze()
        frozen = time.monotonic()
        worker_a = claim().worker
        second.start()
        _wait(lambda: claim().worker != worker_a, 60, "the takeover")
        takeover_s = time.monotonic() - frozen
        n = rpc(second.url, "request.status", id=rid)["n_done"]
        _wait(lambda: rpc(second.url, "request.status", id=rid)["n_done"] >= n + 2, 120, "progress")
        first.thaw()
        final = wait_for(second.url, rid, {"done", "failed"}, 600)
        time.sleep(1.0)
    finally:
        first.stop()
        second.stop()
        daemon.stop()
    rows = _experiments(sessions, rid)
    counted = [e for e in rows if e.status in (ExperimentStatus.DONE, ExperimentStatus.FAILED)]
    points = [tuple(sorted(e.params.items())) for e in counted]
    duplicated = len(points) - len(set(points))
    with sessions() as session:
        told = restore_optimizer(session.get(Request, rid).optimizer_state).n_told
    print(f"2. a core frozen past its 2 s lease in a {budget}-experiment request")
    print(f"   taken over after {takeover_s:.1f} s (heartbeat limit 60 s); final {final['status']}")
    print(f"   points measured twice: {duplicated}; n_done {final['n_done']} (budget {budget})")
    print(f"   optimizer checkpoint: {told} told points; rows counted: {len(counted)}")
    return (
        final["status"] == "done"
        and duplicated == 0
        and final["n_done"] <= budget
        and told == len(counted)
    )


def killed_after_fill(tmp: Path, db_url: str) -> bool:
    budget = 12
    sessions = session_factory(make_engine(db_url))
    daemon = daemon_process(tmp).start()
    core = core_process(tmp, db_url, daemon.url, name="a").start()
    restarts = []
    try:
        rid = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=budget, seed=9)["id"]
        for stop_at in (3, 7):
            _wait(
                lambda n=stop_at: rpc(core.url, "request.status", id=rid)["n_done"] >= n,
                120,
                f"{stop_at} done",
            )
            core.kill9()
            bench = HardwareClient(daemon.url, retries=0)
            bench.lease_epoch = bench.call("lease.status")["epoch"]  # as the dead core
            for pump, reagent in (("SP1", "Cs-oleate"), ("SP2", "PbBr2")):
                state = bench.call("pump.status", pump=pump)
                room = state["capacity_mL"] - state["volume_mL"]
                if room > 0.05:
                    bench.call("pump.fill", pump=pump, reagent=reagent, volume_mL=room * 0.8)
            bench.close()
            restarted = time.monotonic()
            core.start()
            before = rpc(core.url, "request.status", id=rid)["n_done"]
            _wait(
                lambda b=before: rpc(core.url, "request.status", id=rid)["n_done"] > b,
                120,
                "the next experiment",
            )
            restarts.append(time.monotonic() - restarted)
        final = wait_for(core.url, rid, {"done", "failed", "paused"}, 600)
        nxt = rpc(core.url, "request.submit", config=cspbbr3_config(), budget=3, seed=10)["id"]
        final_next = wait_for(core.url, nxt, {"done", "failed", "paused"}, 300)
    finally:
        core.stop()
        daemon.stop()
    overfill = sum(
        1
        for request_id in (rid, nxt)
        for e in _experiments(sessions, request_id)
        if e.error and "over-fill" in e.error
    )
    log = (tmp / "daemon.log").read_text(encoding="utf-8", errors="replace")
    recoveries = len(re.findall(r"recovery for \S+: ", log))
    print(f"3. core killed -9 with loaded syringes, twice in a {budget}-experiment request")
    print(f"   final {final['status']}; next request {final_next['status']}")
    print(f"   over-fill failures: {overfill}; recovery steps logged by the daemon: {recoveries}")
    print(
        "   restart to the next stored experiment: "
        + ", ".join(f"{s:.2f} s" for s in restarts)
        + " (process start included)"
    )
    return (
        final["status"] == "done"
        and final_next["status"] == "done"
        and overfill == 0
        and recoveries > 0
        and all(s < 5.0 for s in restarts)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="requests of scenario 1")
    parser.add_argument("--mariadb", action="store_true", help="start a throwaway MariaDB")
    parser.add_argument("--db-server", help="a MySQL/MariaDB server URL to make databases on")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="maosic-one-driver-") as folder:
        tmp = Path(folder)
        server = None
        server_url = args.db_server
        if args.mariadb:
            from tests.security.mariadb_server import ThrowawayMariaDB

            server = ThrowawayMariaDB(tmp / "mariadb").install().start()
            server_url = server.server_url
        try:
            results = []
            for number, scenario in enumerate(
                (
                    lambda d, u: two_cores(d, u, args.requests),
                    frozen_core,
                    killed_after_fill,
                ),
                start=1,
            ):
                folder_n = tmp / f"scenario{number}"
                folder_n.mkdir()
                results.append(scenario(folder_n, _fresh_database(folder_n, server_url)))
        finally:
            if server is not None:
                server.stop()
    verdict = "PASS" if all(results) else "FAIL"
    print(f"{verdict} ({'MariaDB' if server_url else 'SQLite'})")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
