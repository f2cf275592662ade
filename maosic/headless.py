"""``python -m maosic campaign CONFIG.json [--sim]``: one campaign in the terminal.

With ``--sim`` a simulated lab daemon is started as a child process (the core still talks to it
over HTTP JSON-RPC, exactly as to a real lab) and stopped at the end; without it the campaign
runs against ``--hardware-url`` (default: the settings' daemon). Results go to the settings'
database (``--database-url`` overrides), so they can be inspected afterwards like any request.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tqdm import tqdm

from maosic.config import ConfigError, load_settings
from maosic.db.crypto import LogCipher
from maosic.db.schema import create_or_upgrade
from maosic.db.session import DatabaseError, make_engine, session_factory
from maosic.hardware import HardwareClient
from maosic.language.errors import LanguageError
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService, ServiceError
from maosic.worker import Worker


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_sim_daemon(seed: int, chemistry: str, speed: float = 0.0) -> tuple[subprocess.Popen, str]:
    """Start ``python -m hardware_interface --sim`` on a free loopback port; wait for it.

    The daemon logs every call (a spectrum reply is ~10 kB of log) for as long as the campaign
    runs. Its output goes to an unnamed temporary file, read only when it fails to start: an
    unread pipe fills after about nine experiments and then blocks the daemon in mid-call.
    """
    port = _free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hardware_interface",
            "--sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--chemistry",
            chemistry,
            "--speed",
            str(speed),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}/"
    client = HardwareClient(url, retries=0)
    deadline = time.monotonic() + 30
    try:
        while not client.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"the simulated lab did not start: {err.strip()[-500:]}")
            time.sleep(0.1)
    finally:
        client.close()
        log.close()  # the daemon keeps its own handle; the file goes when both are closed
    return proc, url


def _chemistry_of(config: dict) -> str:
    return str(config.get("chemistry") or config.get("lab", {}).get("chemistry") or "cspbbr3")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m maosic campaign", description=__doc__)
    parser.add_argument("config", type=Path, help="reaction configuration (JSON)")
    parser.add_argument("--sim", action="store_true", help="start a simulated lab for this run")
    parser.add_argument("--optimizer", help="override the configuration's optimizer")
    parser.add_argument("--max", type=int, dest="budget", help="override max_expts (the budget)")
    parser.add_argument("--seed", type=int, default=0, help="optimizer and simulator seed")
    parser.add_argument("--goal", type=float, help="stop once the reward reaches this value")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: the settings')")
    parser.add_argument("--hardware-url", help="daemon URL when not --sim")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        text = args.config.read_text(encoding="utf-8")
        config = json.loads(text)
    except OSError as exc:
        print(f"error: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(
            f"error: {args.config}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
            file=sys.stderr,
        )
        return 2
    daemon = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (kill, a service manager) ends the run like Ctrl-C does, through the cleanup
        # below: Python's default would exit at once and leave the simulated daemon running.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        settings = load_settings()
        url = args.database_url or settings.resolved_database_url
        engine = make_engine(url)
        create_or_upgrade(engine, url)
        sessions = session_factory(engine)
        service = CoreService(sessions)
        target = None
        if args.goal is not None:
            target = {"metric": config.get("metric") or "max_abs_cd_at_exciton", "goal": args.goal}
        hardware_url = args.hardware_url or settings.hardware_url
        if args.sim:
            daemon, hardware_url = start_sim_daemon(args.seed, _chemistry_of(config))
        submitted = service.submit(
            INSTALLATION,
            config=config,
            target=target,
            budget=args.budget,
            optimizer=args.optimizer,
            seed=args.seed,
        )
        request_id = submitted["id"]
        print(
            f"request {request_id}: {config.get('name')}, {submitted['budget']} experiments at "
            f"most, optimizer {submitted['optimizer']}, lab {hardware_url}"
        )
        worker = Worker(
            sessions,
            hardware_url,
            LogCipher.from_file(settings.resolved_log_key_file),
            poll_s=0.05,
            paused_retry_s=0.0,
        )
        done = threading.Event()
        bar = threading.Thread(
            target=_progress, args=(service, request_id, done, args.quiet), daemon=True
        )
        bar.start()
        started = time.perf_counter()
        while service.status(INSTALLATION, request_id)["status"] in ("queued", "running"):
            if not worker.run_once():
                time.sleep(0.05)  # an earlier request of another process is ahead of ours
        done.set()
        bar.join()
        return _summary(
            service.status(INSTALLATION, request_id, experiments=True),
            time.perf_counter() - started,
        )
    except (ConfigError, DatabaseError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ServiceError as exc:
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 2
    except LanguageError as exc:
        print(f"error: {args.config}: {exc}", file=sys.stderr)
        return 2
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=10)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _progress(service: CoreService, request_id: int, done: threading.Event, quiet: bool) -> None:
    status = service.status(INSTALLATION, request_id)
    bar = tqdm(total=status["budget"], unit="expt", disable=quiet, dynamic_ncols=True)

    def show(status: dict) -> None:
        bar.n = status["n_done"]
        best = status["best_reward"]
        # the summary's rounding (_summary), so the bar ends on the number printed below it
        bar.set_postfix_str(f"best {best:.4g}" if best is not None else "best -", refresh=False)
        bar.refresh()

    while True:
        show(service.status(INSTALLATION, request_id))
        if done.wait(0.2):
            break
    show(service.status(INSTALLATION, request_id))  # the final state, best included
    bar.close()


def _summary(status: dict, wall_s: float) -> int:
    print(f"request {status['id']} {status['status']}: {status['stop_reason'] or ''}")
    print(f"  experiments: {status['n_done']} of {status['budget']} in {wall_s:.1f} s wall time")
    if status["best_params"] is not None:
        params = ", ".join(f"{k} = {v:g}" for k, v in status["best_params"].items())
        print(f"  best reward: {status['best_reward']:.4g} at {params}")
        first = next(
            (
                e["number"]
                for e in status["experiments"]
                if e["reward"] is not None and e["reward"] >= 0.95 * status["best_reward"]
            ),
            None,
        )
        if first is not None:
            print(f"  95% of the best first reached at experiment {first}")
    if status["failure_reason"]:
        print(f"  reason: {status['failure_reason']}")
    return 0 if status["status"] == "done" else 1
