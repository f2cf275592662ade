"""`python -m maosic campaign ... --sim` runs a campaign in the terminal and prints the best."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "MAOSIC_INSTANCE_PATH": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "maosic", "campaign", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_headless_campaign_on_the_simulated_lab(tmp_path):
    proc = _run(
        tmp_path,
        "examples/cspbbr3.json",
        "--sim",
        "--max",
        "4",
        "--seed",
        "2",
        "--optimizer",
        "random",
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 of 4" in proc.stdout and "best reward" in proc.stdout
    assert "T = " in proc.stdout and "C = " in proc.stdout
    assert "expt" in proc.stderr  # the progress bar
    assert (tmp_path / "maosic.sqlite3").exists()
    # the bar ends on the best the summary prints (issue 20, item 10)
    summary_best = re.search(r"best reward: (\S+) at", proc.stdout).group(1)
    assert re.findall(r"best (\S+?)[\]\s]", proc.stderr)[-1] == summary_best, proc.stderr[-500:]


def test_headless_campaign_bad_inputs(tmp_path):
    missing = _run(tmp_path, "nope.json", "--sim")
    assert missing.returncode == 2 and "cannot read nope.json" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "flow",\n "name": }')
    bad = _run(tmp_path, str(broken), "--sim")
    assert bad.returncode == 2 and "broken.json:2:" in bad.stderr
    wrong_opt = _run(tmp_path, "examples/cspbbr3.json", "--sim", "--optimizer", "magic")
    assert wrong_opt.returncode == 2 and "unknown optimizer 'magic'" in wrong_opt.stderr


def test_headless_campaign_longer_than_the_daemons_log_buffer(tmp_path):
    """The simulated daemon logs ~30 kB per experiment; 30 experiments are far more than a pipe
    holds (64 kB), so a daemon whose output nobody reads would block after about nine."""
    args = ("examples/cspbbr3.json", "--sim", "--max", "30", "--optimizer", "random")
    proc = _run(tmp_path, *args, timeout=90)  # ~3 s when nothing blocks
    assert proc.returncode == 0, proc.stderr
    assert "30 of 30" in proc.stdout


def test_headless_reports_why_the_simulated_lab_did_not_start(tmp_path):
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text())
    config["chemistry"] = "unobtainium"
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(config))
    proc = _run(tmp_path, str(path), "--sim")
    assert proc.returncode == 1
    assert "the simulated lab did not start" in proc.stderr
    assert "unobtainium" in proc.stderr  # the daemon's own reason, read from its log


def test_sigterm_stops_the_campaign_and_its_simulated_lab(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MAOSIC_INSTANCE_PATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    args = ["examples/cspbbr3.json", "--sim", "--max", "290", "--optimizer", "random"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "maosic", "campaign", *args, "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines = []
        while not (found := re.search(r"lab http://127\.0\.0\.1:(\d+)/", "".join(lines))):
            line = proc.stdout.readline()  # "request 1: ..., lab http://127.0.0.1:PORT/"
            assert line, f"no lab URL in {lines}"
            lines.append(line)
        port = int(found.group(1))
        time.sleep(1.0)  # experiments are running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        proc.kill()
    # the daemon was stopped with the campaign: nothing answers on its port any more
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                break
        assert time.monotonic() < deadline, "the simulated daemon outlived its campaign"
        time.sleep(0.1)
