"""Benchmark: JSON-RPC round-trip latency of `heater.status` on loopback.

Starts the hardware daemon on the simulated lab in-process (the real drivers talk bytes to the
emulators through the maosicsim:// serial handler), then times N sequential calls over one
keep-alive HTTP connection and prints the median and p99 (goal: median < 2 ms).

    python scripts/bench_rpc.py [--calls 1000] [--url http://127.0.0.1:8888/]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hardware_interface.server import start_daemon  # noqa: E402


def measure(url: str, calls: int) -> list[float]:
    """Latencies (s) of `calls` heater.status round trips over one HTTP/1.1 connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    latencies = []
    for i in range(calls + 50):
        body = json.dumps({"jsonrpc": "2.0", "method": "heater.status", "id": i}).encode()
        start = time.perf_counter()
        conn.request("POST", "/", body, {"Content-Type": "application/json"})
        reply = conn.getresponse().read()
        elapsed = time.perf_counter() - start
        if b'"result"' not in reply:
            raise SystemExit(f"call {i} failed: {reply[:200]!r}")
        if i >= 50:  # the first calls warm up caches and the connection
            latencies.append(elapsed)
    conn.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--url", help="an already running daemon (default: start one in-process)")
    args = parser.parse_args()
    handle = None
    url = args.url
    if url is None:
        handle = start_daemon(sim=True, port=0, watchdog_s=0.5)
        url = handle.url
    try:
        lat = sorted(measure(url, args.calls))
    finally:
        if handle is not None:
            handle.stop()
    p99 = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
    print(f"heater.status round trips on loopback: {len(lat)} calls")
    print(f"median {statistics.median(lat) * 1e3:.3f} ms   p99 {p99 * 1e3:.3f} ms   "
          f"mean {statistics.fmean(lat) * 1e3:.3f} ms   max {lat[-1] * 1e3:.3f} ms")  # fmt: skip
    print("goal median < 2 ms:", "met" if statistics.median(lat) < 2e-3 else "NOT met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
