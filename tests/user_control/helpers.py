"""Running the CLI in-process and as a subprocess, isolated from the user's own settings."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from user_control.cli import main

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    status: int
    out: str
    err: str


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment without MAOSIC_* variables whose HOME (and config folder) is ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAOSIC_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    # No installation token from this checkout's instance folder: tests pick their credentials
    # (the demo account's password, unless a test says otherwise).
    env.update(MAOSIC_INSTANCE_PATH=str(home / "no-instance"), MAOSIC_PASSWORD="demo-password")
    env.update(extra)
    return env


def run(argv: list[str], home: Path, **env: str) -> Result:
    """``main(argv)`` in this process with captured output."""
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, stdout=out, stderr=err, environ=clean_env(home, **env))
    return Result(status, out.getvalue(), err.getvalue())


def run_process(argv: list[str], home: Path, timeout: float = 60.0, **env: str) -> Result:
    """``python -m user_control ARGV`` as a child process."""
    environ = clean_env(home, **env)
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "user_control", *argv],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(done.returncode, done.stdout, done.stderr)
