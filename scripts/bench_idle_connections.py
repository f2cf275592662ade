"""Does a real request still get answered while an attacker holds idle connections open?

Starts, on loopback, each in its own process as they run in production: the web site
(``cloud.serve.make_web_server``), the core's JSON-RPC handler (``maosic.core.start_core``, no
worker) and the simulated hardware daemon (``hardware_interface.server.start_daemon``), over a
fresh SQLite database in a temporary directory. This process then opens ``--idle`` TCP
connections to each server that never send a byte (issue 17: 100 of them stopped the core, 300
the web site), and while they are held makes ``--requests`` normal requests to each, every one on
a new connection as a newly arriving user would: ``GET /login`` on the web site, ``core.describe``
(with the core token) on the core, ``system.status`` on the daemon. Before that, the same requests
without idle connections give the baseline.

    python scripts/bench_idle_connections.py                     # 500 idle, 20 requests each
    python scripts/bench_idle_connections.py --idle 1500 --requests 50

Prints, per server: how long opening the idle connections took, then the median and max latency
(ms) of the requests, and PASS when every request was answered correctly within ``--bound-s``
(1 s), FAIL otherwise. Exit status 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import resource
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOST = "127.0.0.1"  # loopback only
TOKEN = "bench-core-token-0123456789abcdef"
KINDS = ("web", "core", "daemon")


def serve(kind: str, tmp: str, db_url: str, ready: Any, stop: Any) -> None:
    """Run one server (in a child process) until ``stop`` is set; put its port on ``ready``."""
    logging.basicConfig(level=logging.ERROR)  # the servers' warnings about the flood: not here
    if kind == "daemon":
        from hardware_interface.server import start_daemon

        handle = start_daemon(sim=True, port=0, host=HOST, watchdog_s=0)
        ready.put(handle.port)
        stop.wait()
        handle.stop()
    elif kind == "core":
        from maosic.config import load_settings
        from maosic.core import start_core

        env = {
            "MAOSIC_INSTANCE_PATH": tmp,
            "MAOSIC_DATABASE_URL": db_url,
            "MAOSIC_CORE_TOKEN": TOKEN,
            "MAOSIC_HOST": HOST,
        }
        core = start_core(load_settings(environ=env), port=0, with_worker=False)
        ready.put(int(core.url.rstrip("/").rsplit(":", 1)[1]))
        stop.wait()
        core.stop()
    else:
        import threading

        from cloud import create_app
        from cloud.serve import make_web_server

        app = create_app(
            {
                "DATABASE_URL": db_url,
                "CORE_URL": "http://127.0.0.1:9/",
                "CORE_TOKEN": TOKEN,
                "SECRET_KEY": "bench",
                "LOG_KEY_FILE": str(Path(tmp) / "log.key"),
            }
        )
        server = make_web_server(app, HOST, 0)
        threading.Thread(target=server.run, daemon=True).start()
        ready.put(server.socket.getsockname()[1])
        stop.wait()
        server.close()


def request(kind: str, port: int, timeout_s: float) -> None:
    """One normal request on a new connection; raises unless it is answered correctly."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        if kind == "web":
            conn.request("GET", "/login")
        else:
            method = "core.describe" if kind == "core" else "system.status"
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method})
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
            conn.request("POST", "/", body=body, headers=headers)
        reply = conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"HTTP {reply.status}: {data[:200]!r}")
        if kind != "web" and "result" not in json.loads(data):
            raise RuntimeError(f"not a JSON-RPC result: {data[:200]!r}")
    finally:
        conn.close()


def measure(
    kind: str, port: int, count: int, timeout_s: float, max_failures: int = 3
) -> tuple[list[float], list[str]]:
    """Latencies (s) of ``count`` requests, and the errors (at most ``max_failures``)."""
    latencies: list[float] = []
    errors: list[str] = []
    for _ in range(count):
        began = time.perf_counter()
        try:
            request(kind, port, timeout_s)
        except Exception as exc:  # noqa: BLE001 - every failure is a result to report
            errors.append(f"{type(exc).__name__}: {exc}")
            if len(errors) >= max_failures:
                break
        latencies.append(time.perf_counter() - began)
        time.sleep(0.02)
    return latencies, errors


def open_idle(port: int, count: int, budget_s: float) -> tuple[list[socket.socket], float]:
    """Up to ``count`` connections that never send anything, opened within ``budget_s``."""
    held: list[socket.socket] = []
    began = time.monotonic()
    while len(held) < count and time.monotonic() - began < budget_s:
        try:
            held.append(socket.create_connection((HOST, port), timeout=5))
        except OSError:
            break
    time.sleep(0.5)  # let the server accept them (and reach its limit, if it has one)
    return held, time.monotonic() - began - 0.5


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < needed:
            print(f"warning: open-file limit {new} < {needed}: fewer idle connections")


def summary(latencies: list[float], errors: list[str], bound_s: float) -> tuple[str, bool]:
    ok = not errors and bool(latencies) and max(latencies) < bound_s
    if not latencies:
        return "no request made", False
    text = (
        f"median {statistics.median(latencies) * 1000:7.1f} ms  "
        f"max {max(latencies) * 1000:7.1f} ms  ({len(latencies)} requests"
        + (f", {len(errors)} failed: {errors[0]}" if errors else "")
        + ")"
    )
    return text, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=500, help="idle connections per server")
    parser.add_argument("--requests", type=int, default=20, help="normal requests per server")
    parser.add_argument("--bound-s", type=float, default=1.0, help="pass if every answer is in")
    parser.add_argument("--timeout-s", type=float, default=5.0, help="give up on a request after")
    parser.add_argument(
        "--open-budget-s", type=float, default=30.0, help="time allowed to open the idle ones"
    )
    args = parser.parse_args()
    if not 1 <= args.requests <= 1000 or not 0 <= args.idle <= 20000:
        parser.error("--requests must be 1..1000 and --idle 0..20000")

    from sqlalchemy import create_engine

    from maosic.db.models import Base

    tmp = Path(tempfile.mkdtemp(prefix="maosic-bench-idle-"))
    db_url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    engine = create_engine(db_url)
    Base.metadata.create_all(engine)
    engine.dispose()

    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    procs: list[Any] = []
    ports: dict[str, int] = {}
    failed = False
    try:
        for kind in KINDS:
            ready = spawn.Queue()
            proc = spawn.Process(target=serve, args=(kind, str(tmp), db_url, ready, stop))
            proc.start()
            procs.append(proc)
            ports[kind] = ready.get(timeout=120)
        # After the servers started: they keep the open-file limit they inherited.
        raise_fd_limit(len(KINDS) * args.idle + 512)
        for kind in KINDS:
            port = ports[kind]
            request(kind, port, args.timeout_s)  # warm-up (imports, first query)
            base, base_errors = measure(kind, port, args.requests, args.timeout_s)
            held, opening_s = open_idle(port, args.idle, args.open_budget_s)
            try:
                loaded, errors = measure(kind, port, args.requests, args.timeout_s)
            finally:
                for sock in held:
                    sock.close()
            base_text, _ = summary(base, base_errors, args.bound_s)
            text, ok = summary(loaded, errors, args.bound_s)
            failed |= not ok
            print(f"{kind:6}  no idle connections:      {base_text}")
            print(
                f"{kind:6}  {len(held):5d} idle (opened in {opening_s:5.2f} s): {text}  "
                f"{'PASS' if ok else 'FAIL'} (bound {args.bound_s:g} s)",
                flush=True,
            )
    finally:
        stop.set()
        for proc in procs:
            proc.join(timeout=15)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
