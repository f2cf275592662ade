"""Load: N requests from C concurrent clients through the web site and the core's handler.

    python scripts/bench_load.py [--requests 500] [--clients 50] [--via mixed|web|core]
                                 [--mysql-url mysql+pymysql://user:pw@host:port/]

Starts on loopback a fresh database (SQLite, or a throwaway MariaDB database), the core's
JSON-RPC handler (no worker, so accepted requests stay queued) and the web site under waitress.
Each client logs in as its own user and submits its share of the requests one after another:
through the web form (POST /requests/new, CSRF token and all, which calls request.submit on the
core) and/or straight to the core's request.submit. Then it checks, from the database:

* every request was stored exactly once (one row per accepted submission, none extra);
* FIFO numbers are 1..N without gaps, queue.list lists the requests in that order, and each
  client's own submissions got increasing numbers in the order it made them (the FIFO order is
  the order of acceptance);

and prints throughput (accepted requests/s) and p50/p95/p99 latency (ms) per path.
Exit status 0 when every check held.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from waitress.server import create_server  # noqa: E402

from cloud import create_app  # noqa: E402
from maosic.config import load_settings  # noqa: E402
from maosic.db.models import Base, Request, Role, User  # noqa: E402
from maosic.db.passwords import hash_password  # noqa: E402
from maosic.db.repository import get_or_create_reaction  # noqa: E402
from maosic.db.session import make_engine, session_factory, transaction  # noqa: E402

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
LOCATION = re.compile(r"/requests/(\d+)$")
PASSWORD = "load-password"
VIAS = ("mixed", "web", "core")


def build_database(url: str, n_users: int) -> tuple[int, dict[str, Any]]:
    """Users load0..N and the CsPbBr3 reaction; returns the reaction's id and its config."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text(encoding="utf-8"))
    password_hash = hash_password(PASSWORD)  # one hash for all users: each costs ~0.15 s
    with transaction(session_factory(engine)) as session:
        reaction, _ = get_or_create_reaction(session, config)
        for u in range(n_users):
            session.add(User(username=f"load{u}", password_hash=password_hash, role=Role.USER))
        session.flush()
        rid = reaction.id
    engine.dispose()
    return rid, config


def _submit_web(s: requests.Session, base: str, token: str, form: dict[str, str]) -> int:
    reply = s.post(
        f"{base}/requests/new", data={**form, "csrf_token": token}, allow_redirects=False
    )
    match = LOCATION.search(reply.headers.get("Location", ""))
    if reply.status_code != 302 or match is None:
        raise RuntimeError(f"web submit: HTTP {reply.status_code} {reply.text[:200]}")
    return int(match.group(1))


def _submit_core(s: requests.Session, core_url: str, params: dict[str, Any]) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "request.submit", "params": params}
    reply = s.post(core_url, json=body, timeout=60).json()
    if "error" in reply:
        raise RuntimeError(f"core submit: {reply['error']}")
    return int(reply["result"]["id"])


def client_loop(
    base: str,
    core_url: str,
    user: str,
    n: int,
    via: str,
    reaction_id: int,
    config: dict[str, Any],
    metric: str,
    out: list[dict[str, Any]],
    errors: list[str],
    lock: threading.Lock,
) -> None:
    """Log in, then submit ``n`` requests one after another, recording id and latency."""
    web = requests.Session()
    core = requests.Session()
    try:
        token = CSRF.search(web.get(f"{base}/login").text).group(1)
        reply = web.post(
            f"{base}/login",
            data={"username": user, "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
        )
        if reply.status_code != 302:
            raise RuntimeError(f"login answered {reply.status_code}")
        token = CSRF.search(web.get(f"{base}/requests/new").text).group(1)
    except (RuntimeError, AttributeError, requests.RequestException) as exc:
        with lock:
            errors.append(f"{user}: {exc}")
        return
    local = []
    for k in range(n):
        name = f"{user}-r{k}"
        path = via if via != "mixed" else ("web" if k % 2 == 0 else "core")
        t0 = time.perf_counter()
        try:
            if path == "web":
                form = {"source": "stored", "reaction_id": str(reaction_id), "name": name,
                        "metric": metric, "budget": "10", "optimizer": "snobfit",
                        "seed": str(k)}  # fmt: skip
                request_id = _submit_web(web, base, token, form)
            else:
                params = {"config": {**config, "name": name}, "target": {"metric": metric},
                          "budget": 10, "optimizer": "snobfit", "seed": k, "owner": user,
                          "name": name}  # fmt: skip
                request_id = _submit_core(core, core_url, params)
        except (RuntimeError, requests.RequestException, ValueError) as exc:
            with lock:
                errors.append(f"{name}: {exc}")
            continue
        local.append(
            {"user": user, "k": k, "path": path, "id": request_id,
             "ms": (time.perf_counter() - t0) * 1e3}
        )  # fmt: skip
    with lock:
        out.extend(local)


def run_clients(
    base: str,
    core_url: str,
    jobs: list[tuple[str, int]],
    via: str,
    reaction_id: int,
    config: dict[str, Any],
    metric: str,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One client process: a thread per (user, number of requests)."""
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(base, core_url, user, n, via, reaction_id, config, metric, out, errors, lock),
        )
        for user, n in jobs
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def check_stored(url: str, core_url: str, done: list[dict[str, Any]], total: int) -> list[str]:
    """Problems found: lost or doubled requests, gaps in the FIFO, order not of acceptance."""
    problems = []
    engine = make_engine(url)
    with session_factory(engine)() as session:
        rows = session.execute(select(Request.id, Request.seq)).all()
    engine.dispose()
    seq_of = {rid: seq for rid, seq in rows}
    ids = [d["id"] for d in done]
    if len(done) != total:
        problems.append(f"{total - len(done)} submissions were not accepted")
    if len(rows) != len(done):
        problems.append(f"{len(rows)} requests stored for {len(done)} accepted submissions")
    if len(set(ids)) != len(ids):
        problems.append("two submissions were given the same request id")
    missing = [i for i in ids if i not in seq_of]
    if missing:
        problems.append(f"accepted but not stored: {missing[:5]}")
    seqs = sorted(seq_of.values())
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append("FIFO numbers have gaps or repeats")
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in done:
        by_user[d["user"]].append(d)
    for user, mine in by_user.items():
        order = [seq_of.get(d["id"], 0) for d in sorted(mine, key=lambda d: d["k"])]
        if order != sorted(order):
            problems.append(f"{user}: FIFO order differs from the order of submission {order}")
    body = {"jsonrpc": "2.0", "id": 1, "method": "queue.list", "params": {}}
    queue = requests.post(core_url, json=body, timeout=120).json()["result"]
    queued_ids = [q["id"] for q in queue]
    if queued_ids != sorted(seq_of, key=lambda i: seq_of[i]):
        problems.append("queue.list is not in FIFO (acceptance) order")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="requests in all")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--via", choices=VIAS, default="mixed",
                        help="web form, core handler, or alternate (mixed)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=16, help="waitress threads of the site")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--mysql-url", default="", help="MariaDB/MySQL server URL (no database)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.clients < 1 or args.procs < 1:
        parser.error("--requests, --clients and --procs must be at least 1")

    from maosic.core import start_core  # late: the core pulls in the whole stack

    # waitress warns at every queued connection; under deliberate overload that is all noise
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    tmp = Path(tempfile.mkdtemp(prefix="maosic-bench-load-"))
    url, backend, admin, db_name = f"sqlite:///{tmp / 'load.sqlite3'}", "SQLite", None, ""
    if args.mysql_url:
        db_name = f"maosic_load_{int(time.time())}"
        admin = create_engine(args.mysql_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4"))
        url, backend = args.mysql_url.rstrip("/") + f"/{db_name}?charset=utf8mb4", "MariaDB"
    reaction_id, config = build_database(url, args.clients)
    settings = load_settings(environ={"MAOSIC_INSTANCE_PATH": str(tmp), "MAOSIC_DATABASE_URL": url})
    core = start_core(settings, port=0, with_worker=False)
    described = requests.post(
        core.url, json={"jsonrpc": "2.0", "method": "core.describe", "params": {}, "id": 1}
    ).json()["result"]
    metric = next(iter(described["metrics"]))
    app = create_app(
        {"DATABASE_URL": url, "CORE_URL": core.url, "SECRET_KEY": "load",
         "LOG_KEY_FILE": str(tmp / "log.key")}
    )  # fmt: skip
    server = create_server(app, host="127.0.0.1", port=0, threads=args.threads, ident="load")
    base = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    threading.Thread(target=server.run, daemon=True).start()

    share = [args.requests // args.clients] * args.clients
    for i in range(args.requests % args.clients):
        share[i] += 1
    jobs = [(f"load{u}", share[u]) for u in range(args.clients)]
    groups = [jobs[i :: args.procs] for i in range(args.procs)]
    done: list[dict[str, Any]] = []
    errors: list[str] = []
    # Clients in their own processes: sharing the servers' GIL would measure the benchmark.
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        started = time.monotonic()
        results = [
            pool.apply_async(
                run_clients, (base, core.url, group, args.via, reaction_id, config, metric)
            )
            for group in groups
            if group
        ]
        for result in results:
            part, part_errors = result.get(timeout=1800)
            done.extend(part)
            errors.extend(part_errors)
        elapsed = time.monotonic() - started
    problems = check_stored(url, core.url, done, args.requests)
    server.close()
    core.stop()
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE `{db_name}`"))
        admin.dispose()

    print(
        f"{args.requests} requests from {args.clients} concurrent clients via {args.via}, "
        f"{backend}: {len(done)} accepted in {elapsed:.1f} s = {len(done) / elapsed:.1f} req/s "
        f"(waitress threads {args.threads}, {args.procs} client processes)"
    )
    print(f"{'path':<8}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    paths = sorted({d["path"] for d in done}) + (
        ["all"] if len({d["path"] for d in done}) > 1 else []
    )
    for path in paths:
        ms = [d["ms"] for d in done if path in ("all", d["path"])]
        print(
            f"{path:<8}{len(ms):>6}{percentile(ms, 50):>10.1f}{percentile(ms, 95):>10.1f}"
            f"{percentile(ms, 99):>10.1f}{max(ms):>10.1f}"
        )
    for problem in problems + errors[:10]:
        print(f"PROBLEM: {problem}")
    verdict = "every request stored once, FIFO = order of acceptance"
    print(f"checks: {'OK' if not problems and not errors else 'FAILED'} ({verdict})")
    return 0 if not problems and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
