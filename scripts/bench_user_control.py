"""Latency of the terminal client against a simulated daemon on loopback.

Prints median and 95th percentile wall times (ms) of:
- in-process commands (``user_control.cli.main``): status, pump status, heater status, stop;
- ``python -m user_control status`` as a fresh process (what a shell script pays per call).

    python scripts/bench_user_control.py [--runs 50] [--process-runs 10]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hardware_interface.server import start_daemon  # noqa: E402
from user_control.cli import main  # noqa: E402


def timed(action: Callable[[], int], runs: int) -> list[float]:
    """Wall times (ms) of ``runs`` calls; fails loudly if a call does not exit 0."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        status = action()
        times.append((time.perf_counter() - start) * 1000.0)
        if status != 0:
            raise SystemExit(f"benchmark command failed with exit status {status}")
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    print(
        f"{name:<34} n={len(times):<4} median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms"
    )


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--process-runs", type=int, default=10)
    opts = parser.parse_args()
    daemon = start_daemon(sim=True, port=0, seed=0, speed=0.0)
    env = {"HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"}
    try:

        def cli(*argv: str) -> Callable[[], int]:
            full = ["--hardware-url", daemon.url, *argv]
            return lambda: main(full, stdout=io.StringIO(), stderr=io.StringIO(), environ=env)

        print(f"python {sys.version.split()[0]}, daemon {daemon.url} (simulated lab, speed 0)")
        for argv in (("status",), ("pump", "SP1", "status"), ("heater", "status")):
            report("in-process " + " ".join(argv), timed(cli(*argv), opts.runs))
        report("in-process stop (emergency stop)", timed(cli("stop"), opts.runs))
        cli("reset")()
        child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "user_control", "--hardware-url", daemon.url, "status"]

        def process() -> int:
            return subprocess.run(argv, env=child_env, capture_output=True, cwd=ROOT).returncode

        report("process python -m user_control status", timed(process, opts.process_runs))
    finally:
        daemon.stop()


if __name__ == "__main__":
    main_bench()
