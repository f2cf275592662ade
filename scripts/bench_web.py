"""Latency of the web site's main pages and of request submission under concurrent clients.

Starts, on loopback: a fresh SQLite database, the core's JSON-RPC handler (no worker, so
submitted requests only queue) and the web app under waitress. Each of ``--clients`` threads
logs in as its own user, then loops over the main pages, a submission of the CsPbBr3
request and its cancellation for ``--seconds``. Every user owns a run of ``--experiments``
experiments with spectra and fits, so the run page and its live JSON carry realistic payloads.
With ``--mysql-url mysql+pymysql://user:pw@host:port/`` a throwaway MariaDB/MySQL database
replaces SQLite (SQLite serialises writers, which is what submission measures).

    python scripts/bench_web.py --clients 20 --seconds 20

Prints p50/p95/max latency (ms) per page and for submission; goal: p95 under 200 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from waitress.server import create_server  # noqa: E402

from cloud import create_app  # noqa: E402
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


def client_loop(
    base: str,
    user: str,
    reaction_id: int,
    stop_at: float,
    out: dict[str, list[float]],
    lock: threading.Lock,
    errors: list[str],
    metric: str,
    think_s: float = 0.0,
) -> None:
    s = requests.Session()
    token = CSRF.search(s.get(f"{base}/login").text).group(1)
    reply = s.post(
        f"{base}/login",
        data={"username": user, "password": PASSWORD, "csrf_token": token},
        allow_redirects=False,
    )
    if reply.status_code != 302:
        errors.append(f"{user}: login answered {reply.status_code}")
        return
    run_id = int(re.search(r'href="/requests/(\d+)"', s.get(f"{base}/").text).group(1))
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
    while time.monotonic() < stop_at:
        for name, path in pages.items():
            # Like the browser: revalidate what it has cached (the run page's polls).
            headers = {"If-None-Match": etags[path]} if path in etags else {}
            t0 = time.perf_counter()
            reply = s.get(base + path, headers=headers)
            local[name].append((time.perf_counter() - t0) * 1e3)
            if reply.status_code not in (200, 304):
                errors.append(f"{user} {path}: HTTP {reply.status_code}")
            if reply.headers.get("ETag"):
                etags[path] = reply.headers["ETag"]
            if think_s:
                time.sleep(think_s)
        token = CSRF.search(s.get(f"{base}/requests/new").text).group(1)
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
        reply = s.post(f"{base}/requests/new", data=form, allow_redirects=False)
        local["submit (POST)"].append((time.perf_counter() - t0) * 1e3)
        if reply.status_code != 302:
            errors.append(f"{user} submit: HTTP {reply.status_code}")
            continue
        # Cancel it again, so the queue stays the length a lab would really have.
        t0 = time.perf_counter()
        reply = s.post(
            base + reply.headers["Location"] + "/cancel",
            data={"csrf_token": token},
            allow_redirects=False,
        )
        local["cancel (POST)"].append((time.perf_counter() - t0) * 1e3)
        if reply.status_code != 302:
            errors.append(f"{user} cancel: HTTP {reply.status_code}")
    with lock:
        for name, values in local.items():
            out[name].extend(values)


def run_clients(
    base: str,
    users: list[str],
    reaction_id: int,
    stop_at_wall: float,
    metric: str,
    think_s: float,
) -> tuple[dict[str, list[float]], list[str]]:
    """One client process: a thread per user until the wall-clock time ``stop_at_wall``."""
    out: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + (stop_at_wall - time.time())
    threads = [
        threading.Thread(
            target=client_loop,
            args=(base, user, reaction_id, stop_at, out, lock, errors, metric, think_s),
        )
        for user in users
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return dict(out), errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of the load")
    parser.add_argument("--experiments", type=int, default=60, help="experiments per run")
    parser.add_argument("--threads", type=int, default=16, help="waitress worker threads")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
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
    settings = load_settings(environ={"MAOSIC_INSTANCE_PATH": str(tmp), "MAOSIC_DATABASE_URL": url})
    core = start_core(settings, port=0, with_worker=False)
    described = requests.post(
        core.url, json={"jsonrpc": "2.0", "method": "core.describe", "params": {}, "id": 1}
    ).json()["result"]
    metric = next(iter(described["metrics"]))  # the CsPbBr3 target: |CD| at the exciton
    app = create_app(
        {
            "DATABASE_URL": url,
            "CORE_URL": core.url,
            "SECRET_KEY": "bench",
            "LOG_KEY_FILE": str(tmp / "log.key"),
        }
    )
    server = create_server(app, host="127.0.0.1", port=0, threads=args.threads, ident="bench")
    base = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
    threading.Thread(target=server.run, daemon=True).start()

    # Clients run in their own processes: in one process with the server they would fight it
    # for the GIL and the figures would measure the benchmark, not the site.
    users = [f"bench{u}" for u in range(args.clients)]
    groups = [users[i :: args.procs] for i in range(args.procs)]
    out: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    start = time.monotonic()
    stop_at_wall = time.time() + args.seconds
    with multiprocessing.get_context("spawn").Pool(args.procs) as pool:
        results = [
            pool.apply_async(
                run_clients,
                (base, group, reaction_id, stop_at_wall, metric, args.think_ms / 1e3),
            )
            for group in groups
            if group
        ]
        for result in results:
            part, part_errors = result.get(timeout=args.seconds + 120)
            for name, values in part.items():
                out[name].extend(values)
            errors.extend(part_errors)
    elapsed = time.monotonic() - start
    server.close()
    core.stop()
    if args.mysql_url:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE `{db_name}`"))

    total = sum(len(v) for v in out.values())
    print(
        f"{args.clients} concurrent clients, {elapsed:.1f} s, {total} requests "
        f"({total / elapsed:.0f}/s), waitress threads {args.threads}, "
        f"{args.experiments} experiments per run, {backend}, {args.procs} client processes, "
        f"think time {args.think_ms:g} ms"
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
