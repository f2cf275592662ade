"""The README's main command (`python run.py`) as a user meets it: one queue in front of both
papers' simulated rigs, every shipped example runs, and a second start on busy ports says so
before it claims anything (issue 20, items 1-3 and 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.faults.processes import ROOT, free_port
from tests.user_control.helpers import run_process

EXAMPLES = ROOT / "examples"
README_FORMULA = (
    "(R1·SP1[0.2, 60, 0.1] + R2·SP2[0.2, 60, 0.1]) × H[$T, 10, 20] | CR[sampler, cd] | ABS-CD[100]"
)


def _env(instance: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAOSIC_")}
    env |= {
        "MAOSIC_INSTANCE_PATH": str(instance),
        "MAOSIC_WEB_PORT": str(ports["web"]),
        "MAOSIC_CORE_PORT": str(ports["core"]),
        "MAOSIC_HARDWARE_PORT": str(ports["hardware"]),
        "MAOSIC_SECOND_LAB_PORT": str(ports["second"]),
        "MAOSIC_NO_BOOTSTRAP": "1",
    }
    return env


@contextmanager
def all_in_one(tmp_path: Path, ports: dict[str, int]) -> Iterator[str]:
    """`python run.py` on ``ports``, until its banner says it runs; yields the banner."""
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "run.py"], cwd=ROOT, env=_env(tmp_path / "instance", ports),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while "MAOSIC is running" not in log_path.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
            yield log_path.read_text(errors="replace")
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _rpc(url: str, token: str, method: str, **params):
    reply = requests.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        headers={"Authorization": f"Bearer {token}", "X-MAOSIC-User": "demo"},
        timeout=30,
    ).json()
    assert "error" not in reply, reply
    return reply["result"]


def _wait_done(url: str, token: str, request_id: int, timeout_s: float = 240) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _rpc(url, token, "request.status", id=request_id)
        if status["status"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.5)
    raise TimeoutError(f"request {request_id} not finished: {status}")


def test_run_py_serves_every_example_and_refuses_busy_ports(tmp_path):
    ports = {name: free_port() for name in ("web", "core", "hardware", "second")}
    with all_in_one(tmp_path, ports) as banner:
        assert "simulated cspbbr3" in banner and "simulated cs3cu2i5" in banner
        core = f"http://127.0.0.1:{ports['core']}/"
        token = (tmp_path / "instance" / "core.token").read_text().strip()

        submissions = {
            "README formula": {"formula": README_FORMULA, "space": {"T": {"bound": [90, 180]}}},
            **{
                path.name: {"config": json.loads(path.read_text(encoding="utf-8"))}
                for path in sorted(EXAMPLES.glob("*.json"))
            },
            **{  # a formula file alone: its "# vary"/"# fix" lines are its space
                path.name: {"formula": path.read_text(encoding="utf-8")}
                for path in sorted(EXAMPLES.glob("*.formula"))
            },
        }
        ids = {
            name: _rpc(core, token, "request.submit", budget=2, seed=1, **params)
            for name, params in submissions.items()
        }
        labs = {name: reply["lab"] for name, reply in ids.items()}
        assert labs["cs3cu2i5.json"] == labs["cs3cu2i5.formula"] == "cs3cu2i5", labs
        assert labs["README formula"] == labs["cspbbr3.json"] == "default", labs
        for name, reply in ids.items():
            final = _wait_done(core, token, reply["id"])
            assert final["status"] == "done" and final["n_done"] == 2, (name, final)
            assert final["n_chemistry_failures"] == 0 and final["n_lab_failures"] == 0, name

        # The same from a terminal: every example submitted with user_control and watched to
        # the end (the demo account; the --watch exit status is 0 only for a done request).
        for path in sorted(EXAMPLES.glob("*.json")) + sorted(EXAMPLES.glob("*.formula")):
            watched = run_process(
                ["--core-url", core, "--user", "demo", "submit", str(path), "--budget", "2",
                 "--watch", "--interval", "0.2"],
                tmp_path / "home",
                timeout=240,
            )  # fmt: skip
            assert watched.status == 0, (path.name, watched.out, watched.err)
            assert "DONE" in watched.out, (path.name, watched.out)

        # A second start on the same ports refuses before it prints any banner.
        second = subprocess.run(
            [sys.executable, "run.py"], cwd=ROOT, env=_env(tmp_path / "other", ports),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 1, second.stdout + second.stderr
        assert "MAOSIC is running" not in second.stdout
        assert f"port {ports['core']} for the core is in use" in second.stderr
