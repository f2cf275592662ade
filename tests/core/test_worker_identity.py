"""Stable worker names: the same after a restart, never shared by two live cores (issue 18)."""

from __future__ import annotations

import subprocess
import sys

from maosic.worker_identity import release_worker_name, stable_worker_name

HOLD = (
    "import sys, time; from pathlib import Path; from maosic.worker_identity import "
    "stable_worker_name as n; print(n(Path(sys.argv[1]), 'lab'), flush=True); time.sleep(60)"
)


def test_a_live_core_keeps_its_name_and_a_restart_gets_it_back(tmp_path):
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        theirs = other.stdout.readline().strip()
        mine = stable_worker_name(tmp_path, "lab")
        assert theirs.endswith(":0") and mine.endswith(":1")  # never the live core's name
        assert theirs.rsplit(":", 1)[0] == mine.rsplit(":", 1)[0]  # same host and instance
    finally:
        other.kill()
        other.wait(10)
    release_worker_name(mine)
    # the core that died gave its slot back with its process: the next core takes its name
    assert stable_worker_name(tmp_path, "lab") == theirs
    release_worker_name(theirs)


def test_two_instances_on_one_machine_have_different_names(tmp_path):
    first = stable_worker_name(tmp_path / "a", "lab")
    second = stable_worker_name(tmp_path / "b", "lab")
    assert first != second
    assert (tmp_path / "a" / "worker.id").stat().st_mode & 0o777 == 0o600
    for name in (first, second):
        release_worker_name(name)
