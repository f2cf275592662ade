"""A MariaDB server of the test's own, to crash and restart under a running campaign.

The shared test server (scripts/test.sh, or a developer's) is never touched: other tests use it
at the same time. This one is started with the same options as scripts/test.sh, in a temporary
folder, on a free port; only its own process is ever killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pymysql

START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str, fallback: str) -> str:
    found = shutil.which(name) or (fallback if Path(fallback).exists() else None)
    if found is None:
        raise RuntimeError(f"{name} not found: install mariadb-server (scripts/test.sh does)")
    return found


class ThrowawayMariaDB:
    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.datadir = folder / "data"
        self.socket = folder / "mysqld.sock"
        self.pid_file = folder / "pid"
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def server_url(self) -> str:
        return f"mysql+pymysql://maosic:maosic@127.0.0.1:{self.port}/"

    def _argv(self) -> list[str]:
        return [
            _binary("mariadbd", "/usr/sbin/mariadbd"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={self.pid_file}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=400",
            f"--log-error={self.dir / 'error.log'}",
        ]

    def install(self) -> ThrowawayMariaDB:
        self.dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [_binary("mariadb-install-db", "/usr/bin/mariadb-install-db"), "--no-defaults",
             f"--datadir={self.datadir}", "--auth-root-authentication-method=normal",
             "--user=root"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {result.stderr[-2000:]}")
        return self

    def start(self) -> ThrowawayMariaDB:
        log = (self.dir / "stdout.log").open("ab")
        self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                conn = pymysql.connect(unix_socket=str(self.socket), user="root")
                break
            except pymysql.err.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.dir / "error.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"mariadbd did not start: {tail}") from None
                time.sleep(0.1)
        with conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'maosic'@'127.0.0.1' IDENTIFIED BY 'maosic'")
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'maosic'@'127.0.0.1'")
        conn.close()
        return self

    def crash(self) -> None:
        """kill -9 our own server: no clean shutdown, InnoDB recovers at the next start."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.crash()
