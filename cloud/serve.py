"""Serve the web app with waitress, with the settings measured to suit it.

The app is CPU-bound Python: every request holds the GIL while it renders or queries, so worker
threads beyond a few do not add throughput, they only contend for the GIL. Under 20 concurrent
clients on 2 cores (``scripts/bench_web.py``) 16 threads gave a submission p95 of ~750 ms,
because the thread holding the SQLite writer lock got only a sliver of the GIL; 4 threads keep
the same throughput and let that thread finish. Requests beyond the threads wait in waitress's
queue, served in arrival order, which is what a person waiting for a page wants.

Every request also hands the GIL back and forth: waitress's I/O thread reads the request and
writes the reply, a worker renders it, each SQLite query releases and retakes the GIL. A thread
that wants the GIL back waits up to the interpreter's switch interval (5 ms by default) while
another thread computes, so one page paid that wait several times over. The server sets a 1 ms
interval: interactive requests get the GIL back sooner, at the price of a little more switching
for CPU-bound threads in the same process (a campaign's optimizer in ``run.py``'s all-in-one).

The server itself comes from ``maosic.wsgi_server``: a connection limit, idle and request
timeouts and a poll() loop that idle or slow clients cannot exhaust (issue 17, item 4).
"""

from __future__ import annotations

import sys

from flask import Flask
from waitress.server import BaseWSGIServer, MultiSocketServer

from maosic.wsgi_server import CONNECTION_LIMIT, REQUEST_TIMEOUT_S, make_wsgi_server

WEB_THREADS = 4  # see the module docstring; measured with scripts/bench_web.py --threads
SWITCH_INTERVAL_S = 0.001  # GIL switch interval for the serving process (s); Python's is 0.005
CHANNEL_TIMEOUT_S = 60  # close keep-alive connections idle this long (s); the run page polls


def make_web_server(
    app: Flask,
    host: str,
    port: int,
    threads: int = WEB_THREADS,
    connection_limit: int = CONNECTION_LIMIT,
    channel_timeout_s: int = CHANNEL_TIMEOUT_S,
    switch_interval_s: float | None = SWITCH_INTERVAL_S,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server for ``app`` on ``host``:``port`` (0 picks a free port); call ``run()``.

    ``threads`` worker threads, at most ``connection_limit`` open connections, idle keep-alive
    connections closed after ``channel_timeout_s`` seconds, a request that takes more than
    ``request_timeout_s`` seconds to arrive dropped (see ``maosic.wsgi_server``).
    ``switch_interval_s`` (s) is set for the whole process (``sys.setswitchinterval``); None
    leaves it alone.
    """
    if threads < 1:
        raise ValueError(f"make_web_server: threads must be >= 1, got {threads}")
    if switch_interval_s is not None:
        if not 0 < switch_interval_s <= 0.1:
            raise ValueError(
                f"make_web_server: switch_interval_s must be in (0, 0.1] s, got {switch_interval_s}"
            )
        sys.setswitchinterval(switch_interval_s)
    return make_wsgi_server(
        app,
        host,
        port,
        threads=threads,
        connection_limit=connection_limit,
        channel_timeout_s=channel_timeout_s,
        request_timeout_s=request_timeout_s,
        ident="maosic",
    )
