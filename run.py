#!/usr/bin/env python3
"""Start MAOSIC.

    python3 run.py                 the whole stack on this machine: web site (127.0.0.1:5000),
                                   core request handler (9999) and a simulated lab daemon (8888)
    python3 run.py web             the web site only
    python3 run.py core            the core handler and its queue worker only
    python3 run.py hardware [...]  the hardware daemon only (see `run.py hardware --help`)

The first start creates a virtual environment in .venv with the pinned requirements and the
SQLite database under instance/; nothing else needs setting up. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("MAOSIC_VENV", ROOT / ".venv"))


def _bootstrap() -> None:
    """Re-run this script inside .venv, creating or updating it first (scripts/bootstrap.sh)."""
    if os.environ.get("MAOSIC_NO_BOOTSTRAP") or Path(sys.prefix).resolve() == VENV.resolve():
        return
    subprocess.run(
        ["bash", "-c", "source scripts/bootstrap.sh && ensure_venv"], cwd=ROOT, check=True
    )
    python = VENV / "bin" / "python"
    os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


log = logging.getLogger("maosic")


def _prepare_database(settings) -> None:
    from maosic.db.schema import create_or_upgrade
    from maosic.db.seed import seed
    from maosic.db.session import make_engine

    url = settings.resolved_database_url
    engine = make_engine(url)
    log.info("%s (%s)", create_or_upgrade(engine, url), engine.url.render_as_string(True))
    engine.dispose()
    for line in seed(url):
        log.info("seeded %s", line)


def _serve_web(settings, stop: threading.Event) -> None:
    from waitress.server import create_server

    from cloud import create_app

    app = create_app()
    server = create_server(app, host=settings.host, port=settings.web_port, threads=8)
    thread = threading.Thread(target=server.run, name="maosic-web", daemon=True)
    thread.start()
    stop.wait()
    server.close()


def _wait_for_signal(stop: threading.Event) -> None:
    def handler(signum, _frame):
        log.info("stopping (signal %d)", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_all(settings, args: argparse.Namespace) -> int:
    from hardware_interface.server import start_daemon
    from maosic.core import start_core

    stop = threading.Event()
    _wait_for_signal(stop)
    from maosic.config import ensure_secret_key

    _prepare_database(settings)
    ensure_secret_key(settings)
    daemon = start_daemon(
        sim=True,
        port=settings.hardware_port,
        host=settings.host,
        seed=settings.sim_seed,
        speed=args.speed if args.speed is not None else settings.sim_speed,
    )
    settings.hardware_url = daemon.url
    core = start_core(settings)
    settings.core_url = core.url
    print(
        "\nMAOSIC is running (simulated lab on loopback, no TLS: for one machine only).\n"
        f"  web site:         http://{settings.host}:{settings.web_port}/\n"
        f"  core handler:     {core.url}   (JSON-RPC 2.0)\n"
        f"  hardware daemon:  {daemon.url}   (JSON-RPC 2.0, simulated lab)\n"
        f"  database:         {settings.resolved_database_url}\n"
        "  log in as demo / demo-password (operator / operator-password, admin / admin-password)\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    os.environ["MAOSIC_CORE_URL"] = core.url
    os.environ["MAOSIC_HARDWARE_URL"] = daemon.url
    try:
        _serve_web(settings, stop)
    finally:
        core.stop()
        daemon.stop()
    print("MAOSIC stopped.")
    return 0


def run_web(settings, args: argparse.Namespace) -> int:
    stop = threading.Event()
    _wait_for_signal(stop)
    print(f"web site on http://{settings.host}:{settings.web_port}/ (Ctrl-C stops)", flush=True)
    _serve_web(settings, stop)
    return 0


def run_core(settings, args: argparse.Namespace) -> int:
    from maosic.core import start_core

    stop = threading.Event()
    _wait_for_signal(stop)
    _prepare_database(settings)
    core = start_core(settings)
    print(
        f"core handler on {core.url}, worker -> {settings.hardware_url} (Ctrl-C stops)", flush=True
    )
    stop.wait()
    core.stop()
    return 0


COMPONENTS: dict[str, Callable[..., int]] = {
    "all": run_all,
    "web": run_web,
    "core": run_core,
}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if argv and argv[0] == "hardware":
        from hardware_interface.server import main as hardware_main

        return hardware_main(argv[1:])
    parser = argparse.ArgumentParser(prog="run.py", description="Start MAOSIC or one component.")
    parser.add_argument("component", nargs="?", default="all", choices=[*COMPONENTS, "hardware"])
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated lab speed: 0 = waits cost no time, 1 = real time",
    )
    args = parser.parse_args(argv)
    from maosic.config import ConfigError, load_settings
    from maosic.db.session import DatabaseError

    try:
        settings = load_settings()
        return COMPONENTS[args.component](settings, args)
    except (ConfigError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc} (is another MAOSIC already running on these ports?)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    _bootstrap()
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
