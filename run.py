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
from dataclasses import dataclass
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


def _prepare_database(settings, demo: bool = False) -> bool:
    """Schema and example reactions; with ``demo`` (the all-in-one start on the default SQLite
    file, unless ``demo_accounts`` is off) the demo accounts, once, on a database with no
    account. Returns True when the demo accounts are in use (created now or before)."""
    from sqlalchemy import select

    from maosic.db.models import User
    from maosic.db.schema import create_or_upgrade
    from maosic.db.seed import FIRST_ADMIN_HINT, count_users, seed_demo_users, seed_examples
    from maosic.db.session import make_engine, session_factory

    url = settings.resolved_database_url
    engine = make_engine(url)
    log.info("%s (%s)", create_or_upgrade(engine, url), _shown_url(url))
    for line in seed_examples(url):
        log.info("seeded %s", line)
    demo = demo and settings.demo_accounts and not settings.database_url
    for line in seed_demo_users(url) if demo else []:
        log.info("created %s", line)
    with session_factory(engine)() as session:
        if not count_users(session):
            log.warning(FIRST_ADMIN_HINT)
        demo_in_use = demo and session.scalar(
            select(User.id).where(User.username == "demo", User.active.is_(True))
        )
    engine.dispose()
    return bool(demo_in_use)


def _shown_url(url: str) -> str:
    """The database URL without its password: banners and logs end up in tickets and chats."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _serve_web(settings, stop: threading.Event, ready: Callable[[], None] | None = None) -> None:
    from cloud import create_app
    from cloud.serve import make_web_server

    app = create_app()
    server = make_web_server(app, settings.host, settings.web_port)  # listening from here
    if ready is not None:
        ready()  # e.g. the "MAOSIC is running" banner: only once the site answers
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


# The all-in-one start runs the daemon and the core as child processes of the web server, the
# way a lab deploys them on separate machines: each has its own interpreter (a campaign's
# fitting and optimizing never holds the web site's GIL: measured with scripts/bench_web.py,
# page p95 under 20 clients halves), and one crashing leaves the others up to say so.
CHILD_START_TIMEOUT_S = 60.0


def _child(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    log.info("starting %s: %s", name, " ".join(argv))
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *argv], cwd=ROOT, env=env)


def _wait_for_rpc(
    name: str, url: str, method: str, child: subprocess.Popen, token: str = ""
) -> None:
    """Block until ``url`` answers a JSON-RPC ``method`` call, or fail if ``child`` exits."""
    import json
    import time
    import urllib.error
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}).encode()
    deadline = time.monotonic() + CHILD_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise OSError(f"the {name} exited with code {child.returncode} while starting")
        try:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(url, data=body, headers=headers)
            with urllib.request.urlopen(request, timeout=2.0) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise OSError(f"the {name} did not answer on {url} within {CHILD_START_TIMEOUT_S:g} s")


def _watch_children(children: dict[str, subprocess.Popen], stop: threading.Event) -> None:
    """Stop everything when a child dies: a web site without its core would only mislead."""
    while not stop.wait(1.0):
        for name, child in children.items():
            if child.poll() is not None:
                log.error("the %s exited with code %s; stopping", name, child.returncode)
                stop.set()
                return


def _stop_children(children: dict[str, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for name, child in children.items():
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            log.warning("the %s did not stop in 15 s; killing it", name)
            child.kill()
            child.wait()


def _busy_ports(host: str, ports: dict[str, int]) -> dict[str, int]:
    """The ports (by what would use them) that something on ``host`` already listens on."""
    import socket

    busy = {}
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                busy[name] = port
    return busy


@dataclass(frozen=True)
class _SimLab:
    """One simulated lab of the all-in-one start: its name in the core, rig, port, and the
    suffix of its state files in the instance folder."""

    name: str
    chemistry: str
    port: int
    suffix: str

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}/"

    def argv(self, settings, host: str, speed: float) -> list[str]:
        instance = settings.instance_path
        return [
            "hardware",
            "--sim",
            "--chemistry",
            self.chemistry,
            "--host",
            host,
            "--port",
            str(self.port),
            "--seed",
            str(settings.sim_seed),
            "--speed",
            str(speed),
            # The simulated lab keeps its syringes, bottles, heater and arm across restarts as
            # hardware does, and the daemon its belief about them (issue 18): together, or
            # every restart would report discrepancies.
            "--journal",
            str(instance / f"lab-journal{self.suffix}.json"),
            "--sim-state",
            str(instance / f"sim-lab-state{self.suffix}.json"),
        ]


def run_all(settings, args: argparse.Namespace) -> int:
    from maosic.config import ensure_core_token, ensure_secret_key

    stop = threading.Event()
    _wait_for_signal(stop)
    demo = _prepare_database(settings, demo=True)
    ensure_secret_key(settings)
    core_token = ensure_core_token(settings)
    speed = args.speed if args.speed is not None else settings.sim_speed
    host = settings.host
    hardware_url = f"http://{host}:{settings.hardware_port}/"
    core_url = f"http://{host}:{settings.core_port}/"
    # One simulated lab per rig of the papers, behind the one queue: the core routes each
    # request to the lab that has its modules and reagents ("default" keeps its name so that
    # an existing database's requests stay with it).
    sims = [_SimLab("default", "cspbbr3", settings.hardware_port, "")]
    if settings.second_lab_port:
        sims.append(_SimLab("cs3cu2i5", "cs3cu2i5", settings.second_lab_port, "-cs3cu2i5"))
    env = {
        **os.environ,
        "MAOSIC_NO_BOOTSTRAP": "1",
        "MAOSIC_HARDWARE_URL": hardware_url,
        "MAOSIC_CORE_URL": core_url,
        "MAOSIC_LABS": ",".join(f"{lab.name}={lab.url(host)}" for lab in sims),
    }
    ports = {"web site": settings.web_port, "core": settings.core_port}
    ports |= {f"hardware daemon ({lab.chemistry})": lab.port for lab in sims}
    busy = _busy_ports(host, ports)
    if busy:
        # Said before anything starts: otherwise the readiness probes would be answered by
        # whatever holds the ports (another MAOSIC) and this one would claim to be running.
        print(
            "MAOSIC cannot start: "
            + "; ".join(f"port {port} for the {name} is in use" for name, port in busy.items())
            + ". Another MAOSIC may be running: stop it, or choose other ports "
            "(MAOSIC_WEB_PORT, MAOSIC_CORE_PORT, MAOSIC_HARDWARE_PORT, MAOSIC_SECOND_LAB_PORT).",
            file=sys.stderr,
            flush=True,
        )
        return 1
    children: dict[str, subprocess.Popen] = {}
    try:
        for lab in sims:
            name = f"hardware daemon ({lab.chemistry})"
            children[name] = _child(name, lab.argv(settings, host, speed), env)
        for lab in sims:
            name = f"hardware daemon ({lab.chemistry})"
            _wait_for_rpc(name, lab.url(host), "system.status", children[name])
        children["core"] = _child("core", ["core"], env)
        _wait_for_rpc("core", core_url, "queue.list", children["core"], core_token)
        settings.hardware_url, settings.core_url = hardware_url, core_url
        os.environ["MAOSIC_CORE_URL"] = core_url
        os.environ["MAOSIC_HARDWARE_URL"] = hardware_url
        accounts = (
            "  log in as demo / demo-password (operator / operator-password, "
            "admin / admin-password)\n"
            if demo
            else "  log in with your account (scripts/create_db.py --create-admin NAME makes one)\n"
        )
        threading.Thread(
            target=_watch_children, args=(children, stop), name="maosic-children", daemon=True
        ).start()

        def announce() -> None:
            print(
                "\nMAOSIC is running (simulated lab on loopback, no TLS: for one machine only).\n"
                f"  web site:         http://{host}:{settings.web_port}/\n"
                f"  core handler:     {core_url}   (JSON-RPC 2.0; token in instance/core.token)\n"
                + "".join(
                    f"  hardware daemon:  {lab.url(host)}   "
                    f"(JSON-RPC 2.0, simulated {lab.chemistry})\n"
                    for lab in sims
                )
                + f"  database:         {_shown_url(settings.resolved_database_url)}\n"
                f"{accounts}"
                "Press Ctrl-C to stop.\n",
                flush=True,
            )

        _serve_web(settings, stop, announce)
    finally:
        _stop_children(children)
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
