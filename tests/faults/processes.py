"""Start the daemon and the core as real processes, so tests can kill -9 them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.core.rpc_helpers import TEST_CORE_TOKEN

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, method: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            requests.post(
                url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}, timeout=2
            )
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


class Process:
    def __init__(self, args: list[str], env: dict[str, str], url: str, probe: str, log: Path):
        self.args, self.env, self.url, self.probe, self.log = args, env, url, probe, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_http(self.url, self.proc, self.probe)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def freeze(self) -> None:
        """SIGSTOP the whole process group: it keeps its sockets but does nothing."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)  # a frozen process cannot act on SIGTERM
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


def daemon_process(
    tmp: Path, port: int | None = None, seed: int = 0, log_level: str = "INFO"
) -> Process:
    """The daemon on the simulated lab; ``log_level="DEBUG"`` puts every call's params and
    reply in its log (INFO has one line per acting call)."""
    port = port or free_port()
    args = [
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
        "--log-level",
        log_level,
    ]
    return Process(
        args, dict(os.environ), f"http://127.0.0.1:{port}/", "system.status", tmp / "daemon.log"
    )


def core_process(
    tmp: Path,
    db_url: str,
    hardware_url: str,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    name: str = "core",
) -> Process:
    """A `run.py core` process; ``name`` keeps the instance folder and log of several cores
    apart (each its own instance, as on separate machines)."""
    port = port or free_port()
    env = dict(os.environ)
    env.update(
        {
            "MAOSIC_NO_BOOTSTRAP": "1",
            "MAOSIC_INSTANCE_PATH": str(tmp / "instance"),
            "MAOSIC_DATABASE_URL": db_url,
            "MAOSIC_HARDWARE_URL": hardware_url,
            "MAOSIC_CORE_PORT": str(port),
            "MAOSIC_WORKER_POLL_S": "0.1",
            "MAOSIC_HEARTBEAT_S": "0.3",
            "MAOSIC_STALE_AFTER_S": "1.5",
            "MAOSIC_PAUSED_RETRY_S": "0.5",
            "MAOSIC_RPC_RETRIES": "1",
            "MAOSIC_CORE_TOKEN": TEST_CORE_TOKEN,
        }
    )
    if name != "core":
        env["MAOSIC_INSTANCE_PATH"] = str(tmp / f"instance-{name}")
    env.update(extra_env or {})
    return Process(
        [sys.executable, "run.py", "core"],
        env,
        f"http://127.0.0.1:{port}/",
        "queue.list",
        tmp / f"{name}.log",
    )
