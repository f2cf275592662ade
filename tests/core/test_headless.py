"""`python -m maosic campaign ... --sim` runs a campaign in the terminal and prints the best."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "MAOSIC_INSTANCE_PATH": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "maosic", "campaign", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
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


def test_headless_campaign_bad_inputs(tmp_path):
    missing = _run(tmp_path, "nope.json", "--sim")
    assert missing.returncode == 2 and "cannot read nope.json" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "flow",\n "name": }')
    bad = _run(tmp_path, str(broken), "--sim")
    assert bad.returncode == 2 and "broken.json:2:" in bad.stderr
    wrong_opt = _run(tmp_path, "examples/cspbbr3.json", "--sim", "--optimizer", "magic")
    assert wrong_opt.returncode == 2 and "unknown optimizer 'magic'" in wrong_opt.stderr
