"""Latency of the web site's main pages and of request submission under concurrent clients.

Starts, on loopback: a fresh SQLite database, the core's JSON-RPC handler (no worker, so
submitted requests only queue; in its own process as ``run.py`` runs it, or with
``--core-in-web`` in the web server's) and the web app under waitress with the settings of
``cloud.serve.make_web_server``. Each of ``--clients`` threads logs in as its own user, then
loops over the main pages, a submission of the CsPbBr3 request and its cancellation; the first
``--warmup`` seconds are not measured, then ``--seconds`` are. Every user owns a finished run of
``--experiments`` experiments with spectra and fits, so the run page and its live JSON carry
realistic payloads. The clients run in ``--procs`` processes of their own and speak HTTP/1.1
with keep-alive through ``http.client`` (a browser's cookies, CSRF tokens, ETags), so that the
load generator leaves the 2 cores to the server it measures. With ``--mysql-url
mysql+pymysql://user:pw@host:port/`` a throwaway MariaDB/MySQL database replaces SQLite (SQLite
serialises writers, which is what submission measures).

    flock /tmp/maosic-bench.lock python scripts/bench_web.py --clients 20 --seconds 20

Prints p50/p95/max latency (ms) per page and for submission, the server process's CPU per
request and the load average; goal: p95 under 200 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from cloud import create_app  # noqa: E402
from cloud.serve import WEB_THREADS, make_web_server  # noqa: E402
from maosic.config import load_settings  # noqa: E402
from maosic.db.models import (  # noqa: E402
    Base,
    Experiment,
    ExperimentStatus,
    PeakFit,
    Request,
    RequestStatus,
    Role,
    Spectrum,
)
from maosic.db.passwords import hash_password  # noqa: E402
from maosic.db.repository import get_or_create_reaction  # noqa: E402
from maosic.db.session import make_engine, session_factory, transaction  # noqa: E402

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
PASSWORD = "bench-password"


def _curve(wl: list[float], centre: float, height: float, fwhm: float) -> list[float]:
    return [height * math.exp(-4 * math.log(2) * ((x - centre) / fwhm) ** 2) for x in wl]


def build_database(url: str, n_users: int, n_experiments: int) -> int:
    """Users bench0..N with one run each; returns the stored CsPbBr3 reaction's id."""
    from maosic.db.models import User

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text(encoding="utf-8"))
    password_hash = hash_password(PASSWORD)  # one hash for all: hashing 20 costs seconds
    wl = [300.0 + i for i in range(401)]
    t0 = datetime(2026, 11, 1, 9, 0, 0)
    with transaction(session_factory(engine)) as session:
        reaction, _ = get_or_create_reaction(session, config)
        for u in range(n_users):
            user = User(username=f"bench{u}", password_hash=password_hash, role=Role.USER)
            session.add(user)
            session.flush()
            request = Request(
                seq=u + 1,
                owner_id=user.id,
                reaction_id=reaction.id,
                target={"metric": config.get("metric")},
                budget=250,
                optimizer="snobfit",
                status=RequestStatus.DONE,
            )
            session.add(request)
            session.flush()
            for n in range(1, n_experiments + 1):
                exp = Experiment(
                    request_id=request.id,
                    number=n,
                    params={"T": 90 + (n * 7) % 90, "C": round(0.2 + (n * 0.037) % 1.0, 2)},
                    status=ExperimentStatus.DONE,
                    reward=(n % 17) / 17,
                    # As the campaign stores a finished experiment: ~2 min per loop.
                    started_at=t0 + timedelta(seconds=120 * (n - 1)),
                    finished_at=t0 + timedelta(seconds=120 * n - 5),
                    lab_time_s=115.0,
                )
                session.add(exp)
                session.flush()
                for kind, unit in (("absorbance", "OD"), ("cd", "mdeg")):
                    spec = Spectrum(
                        experiment_id=exp.id,
                        kind=kind,
                        unit=unit,
                        n_points=len(wl),
                        wavelength_nm=wl,
                        value=_curve(wl, 450.0, 0.8, 20.0),
                    )
                    session.add(spec)
                    session.flush()
                    session.add(
                        PeakFit(
                            spectrum_id=spec.id,
                            shape="gaussian",
                            n_peaks=1,
                            peaks=[{"centre_nm": 450.0, "height": 0.8, "fwhm_nm": 20.0}],
                            baseline=[0.0],
                        )
                    )
        rid = reaction.id
    engine.dispose()
    return rid


class LeanClient:
    """One browser-like HTTP/1.1 client: a keep-alive connection and the site's cookies.

    ``requests`` costs ~1-2 ms of CPU per call; the clients share the 2 cores with the server,
    so a heavy client would slow the server it measures. This one sends the same requests (form
    posts with the CSRF token, the session cookie, ETag revalidation) with far less work.
    """

    def __init__(self, base: str):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """(status, headers, body); redirects are not followed (the figures time one request)."""
        send = dict(headers or {})
        if self.cookies:
            send["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            send["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):  # the server may close an idle keep-alive connection
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self._conn.request(method, path, body=body, headers=send)
                reply = self._conn.getresponse()
                data = reply.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        for header in reply.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        if reply.getheader("Connection", "").lower() == "close":
            self._conn.close()
            self._conn = None
        return reply.status, reply.headers, data

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _csrf(body: bytes) -> str:
    found = CSRF.search(body.decode())
    if found is None:
        raise RuntimeError("no CSRF token in the page")
    return found.group(1)


def client_loop(
    base: str,
    user: str,
    reaction_id: int,
    measure_from: float,
    stop_at: float,
    out: dict[str, list[float]],
    lock: threading.Lock,
    errors: list[str],
    metric: str,
    think_s: float = 0.0,
) -> None:
    """Log in as ``user``, then loop until ``stop_at`` (monotonic s); latencies of requests sent
    before ``measure_from`` (the warm-up, while the other clients still log in) are dropped."""
    client = LeanClient(base)
    token = _csrf(client.request("GET", "/login")[2])
    status, _, _ = client.request(
        "POST", "/login", form={"username": user, "password": PASSWORD, "csrf_token": token}
    )
    if status != 302:
        errors.append(f"{user}: login answered {status}")
        return
    run_id = int(re.search(rb'href="/requests/(\d+)"', client.request("GET", "/")[2]).group(1))
    pages = {
        "my requests /": "/",
        "queue /queue": "/queue",
        "new request form": "/requests/new",
        "run page": f"/requests/{run_id}",
        "run live.json": f"/requests/{run_id}/live.json",
        "experiment page": f"/requests/{run_id}/experiments/1",
    }
    local: dict[str, list[float]] = defaultdict(list)
    etags: dict[str, str] = {}

    def record(name: str, t0: float) -> None:
        if measure_from <= t0 < stop_at:
            local[name].append((time.perf_counter() - t0) * 1e3)

    while time.monotonic() < stop_at:
        for name, path in pages.items():
            # Like the browser: revalidate what it has cached (the run page's polls).
            headers = {"If-None-Match": etags[path]} if path in etags else {}
            t0 = time.perf_counter()
            status, reply_headers, _ = client.request("GET", path, headers=headers)
            record(name, t0)
            if status not in (200, 304):
                errors.append(f"{user} {path}: HTTP {status}")
            if reply_headers.get("ETag"):
                etags[path] = reply_headers["ETag"]
            if think_s:
                time.sleep(think_s)
        # The token comes from the form page, as a browser gets it (the form's own GET is timed
        # above as "new request form").
        token = _csrf(client.request("GET", "/requests/new")[2])
        form = {
            "csrf_token": token,
            "source": "stored",
            "reaction_id": str(reaction_id),
            "metric": metric,
            "budget": "10",
            "optimizer": "snobfit",
            "seed": "0",
        }
        t0 = time.perf_counter()
        status, reply_headers, _ = client.request("POST", "/requests/new", form=form)
        record("submit (POST)", t0)
        if status != 302:
            errors.append(f"{user} submit: HTTP {status}")
            continue
        # Cancel it again, so the queue stays the length a lab would really have.
        location = urlsplit(reply_headers["Location"]).path
        t0 = time.perf_counter()
        status, _, _ = client.request("POST", location + "/cancel", form={"csrf_token": token})
        record("cancel (POST)", t0)
        if status != 302:
            errors.append(f"{user} cancel: HTTP {status}")
    client.close()
    with lock:
        for name, values in local.items():
            out[name].extend(values)


def run_clients(
    base: str,
    users: list[str],
    reaction_id: int,
    measure_from_wall: float,
    stop_at_wall: float,
    metric: str,
    think_s: float,
) -> tuple[dict[str, list[float]], list[str]]:
    """One client process: a thread per user until the wall-clock time ``stop_at_wall``;
    figures from ``measure_from_wall`` on."""
    out: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    now_mono, now_wall = time.monotonic(), time.time()
    measure_from = now_mono + (measure_from_wall - now_wall)
    stop_at = now_mono + (stop_at_wall - now_wall)
    threads = [
        threading.Thread(
            target=client_loop,
            args=(
                base,
                user,
                reaction_id,
                measure_from,
                stop_at,
                out,
                lock,
                errors,
                metric,
                think_s,
            ),
        )
        for user in users
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(out), errors


def serve_core(instance: str, url: str, ready: Any, stop: Any) -> None:
    """The core's handler (no worker) in a process of its own, as ``run.py core`` runs it;
    sends its URL through ``ready`` and serves until ``stop`` is set."""
    from maosic.core import start_core

    settings = load_settings(environ={"MAOSIC_INSTANCE_PATH": instance, "MAOSIC_DATABASE_URL": url})
    core = start_core(settings, port=0, with_worker=False)
    ready.put(core.url)
    stop.wait()
    core.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    # Under a closed-loop load waitress's queue is never empty; its per-request "Task queue
    # depth" warnings would bury the table. The latencies below already show the queueing.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration (s)")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="unmeasured load before it: logins (s)"
    )
    parser.add_argument("--experiments", type=int, default=60, help="experiments per run")
    parser.add_argument(
        "--threads", type=int, default=WEB_THREADS, help="waitress worker threads (as run.py)"
    )
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--core-in-web",
        dest="core_process",
        action="store_false",
        help="run the core's handler in the web server's process instead of its own (run.py "
        "starts it in its own, as a lab runs it on its own machine)",
    )
    parser.add_argument("--mysql-url", default="", help="MariaDB/MySQL server URL (no database)")
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="pause between a client's requests (ms)"
    )
    args = parser.parse_args()

    from maosic.core import start_core  # imported late: the core pulls in the whole stack

    tmp = Path(tempfile.mkdtemp(prefix="maosic-bench-web-"))
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    backend = "SQLite"
    if args.mysql_url:
        db_name = f"maosic_bench_{int(time.time())}"
        admin = create_engine(args.mysql_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4"))
        url, backend = args.mysql_url.rstrip("/") + f"/{db_name}?charset=utf8mb4", "MariaDB"
    reaction_id = build_database(url, args.clients, args.experiments)
    spawn = multiprocessing.get_context("spawn")
    if args.core_process:
        core_ready, core_stop = spawn.Queue(), spawn.Event()
        core_proc = spawn.Process(target=serve_core, args=(str(tmp), url, core_ready, core_stop))
        core_proc.start()
        core_url = core_ready.get(timeout=60)
    else:
        settings = load_settings(
            environ={"MAOSIC_INSTANCE_PATH": str(tmp), "MAOSIC_DATABASE_URL": url}
        )
        core = start_core(settings, port=0, with_worker=False)
        core_url = core.url
    described = requests.post(
        core_url, json={"jsonrpc": "2.0", "method": "core.describe", "params": {}, "id": 1}
    ).json()["result"]
    metric = next(iter(described["metrics"]))  # the CsPbBr3 target: |CD| at the exciton
    app = create_app(
        {
            "DATABASE_URL": url,
            "CORE_URL": core_url,
            "SECRET_KEY": "bench",
            "LOG_KEY_FILE": str(tmp / "log.key"),
        }
    )
    server = make_web_server(app, host="127.0.0.1", port=0, threads=args.threads)
    base = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    threading.Thread(target=server.run, daemon=True).start()

    # Clients run in their own processes: in one process with the server they would fight it
    # for the GIL and the figures would measure the benchmark, not the site.
    users = [f"bench{u}" for u in range(args.clients)]
    groups = [users[i :: args.procs] for i in range(args.procs)]
    out: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    # The warm-up covers starting the client processes and 20 logins (scrypt, ~0.1 s of CPU
    # each); only the steady state after it is measured. CPU time of this process (the web
    # server and the core's handler) is sampled at the start and the end of the measurement.
    measure_from_wall = time.time() + args.warmup
    stop_at_wall = measure_from_wall + args.seconds
    samples: dict[str, tuple[float, tuple[float, float, float]]] = {}

    def sample(name: str) -> None:
        samples[name] = (time.process_time(), os.getloadavg())

    timers = [
        threading.Timer(measure_from_wall - time.time(), sample, ("start",)),
        threading.Timer(stop_at_wall - time.time(), sample, ("stop",)),
    ]
    for timer in timers:
        timer.start()
    with spawn.Pool(args.procs) as pool:
        results = [
            pool.apply_async(
                run_clients,
                (
                    base,
                    group,
                    reaction_id,
                    measure_from_wall,
                    stop_at_wall,
                    metric,
                    args.think_ms / 1e3,
                ),
            )
            for group in groups
            if group
        ]
        for result in results:
            part, part_errors = result.get(timeout=args.warmup + args.seconds + 120)
            for name, values in part.items():
                out[name].extend(values)
            errors.extend(part_errors)
    for timer in timers:
        timer.join()
    elapsed = args.seconds
    server_cpu_s = samples["stop"][0] - samples["start"][0]
    load_before, load_after = samples["start"][1], samples["stop"][1]
    server.close()
    if args.core_process:
        core_stop.set()
        core_proc.join(timeout=30)
    else:
        core.stop()
    if args.mysql_url:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE `{db_name}`"))

    total = sum(len(v) for v in out.values())
    print(
        f"{args.clients} concurrent clients, {elapsed:.1f} s measured after {args.warmup:g} s "
        f"warm-up, {total} requests "
        f"({total / elapsed:.0f}/s), waitress threads {args.threads}, "
        f"{args.experiments} experiments per run, {backend}, {args.procs} client processes, "
        f"think time {args.think_ms:g} ms, core handler "
        + ("in its own process" if args.core_process else "in the web server's process")
    )
    print(
        f"server process ({'web' if args.core_process else 'web + core handler'}) CPU: "
        f"{server_cpu_s:.1f} s = "
        f"{server_cpu_s / elapsed:.2f} cores, {server_cpu_s * 1e3 / max(total, 1):.1f} ms/request; "
        "load average 1/5/15 min before "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after "
        + "/".join(f"{x:.2f}" for x in load_after)
    )
    print(f"{'page':<22}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    worst = 0.0
    for name, values in out.items():
        p95 = percentile(values, 95)
        worst = max(worst, p95)
        print(
            f"{name:<22}{len(values):>7}{statistics.median(values):>10.1f}{p95:>10.1f}"
            f"{max(values):>10.1f}"
        )
    print(f"worst p95: {worst:.1f} ms (goal < 200 ms): {'OK' if worst < 200 else 'MISSED'}")
    if errors:
        print(f"{len(errors)} errors, first: {errors[:3]}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
