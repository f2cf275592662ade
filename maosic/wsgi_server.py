"""A waitress server that idle and slow clients cannot starve: the web site and the core use it.

The threat (issue 17, item 4). Waitress serves every connection from one poll loop and stops
accepting new ones once ``connection_limit`` are open (100 by default). So 100 TCP connections
that connect and say nothing shut every real client out until waitress's idle timeout (120 s)
frees them, and the attacker simply reconnects. A "slowloris" client that trickles one header
byte every few seconds is never idle, so waitress never closes it at all. And by default
waitress watches its sockets with select(), which raises on a descriptor above 1023: past about
a thousand open files the serving loop dies.

What :func:`make_wsgi_server` sets against it:

* a connection limit of ``CONNECTION_LIMIT`` (2000) instead of 100, see the constant;
* ``channel_timeout_s``: a connection with no request in progress and no byte received for this
  long is closed (waitress's own idle timeout, checked every ``cleanup_interval_s``);
* ``request_timeout_s``: a request must arrive whole, headers and body, within this long of its
  first byte, however steadily its bytes trickle in (``_DeadlineChannel``; waitress has no such
  limit), so a slowloris client holds its slot for seconds, not forever;
* ``asyncore_use_poll``: poll() instead of select(), no limit on descriptor numbers;
* up to ``ACCEPT_BURST`` connections accepted per turn of the loop instead of one: every turn
  visits every open connection, so accepting a burst of N one per turn cost O(N^2), and a real
  client arriving behind 2000 attackers' connections waited over a second for its turn;
* the process's soft RLIMIT_NOFILE raised toward the hard limit when it is too low for the
  connection limit (when even the hard limit is too low, the connection limit is lowered to fit
  instead: an accept() failing with EMFILE would make waitress's loop spin).

Beyond the limit, new connections wait in the kernel's listen backlog until a timeout frees a
slot; no server-side cap beats an attacker with unbounded sockets: that is for a firewall or a
reverse proxy with per-address limits.
"""

from __future__ import annotations

import logging
import resource
import time
import types
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

log = logging.getLogger(__name__)

# An idle connection costs waitress one file descriptor and a few kB (a channel object and an
# empty buffer), but every turn of the poll loop visits every open connection. Measured with
# scripts/bench_idle_connections.py on 2 cores: with 1900 idle connections a request took a
# median of ~9 ms (max ~16 ms) against ~2-5 ms with none. 2000 is 20x waitress's default and 4x
# the 500 idle connections an attacker used (issue 17), far above what real clients open (a
# browser holds ~6; the web site is the core's only regular client), and stays well inside a
# raised open-file limit.
CONNECTION_LIMIT = 2000
# Close a connection idle this long (s). Twice the 30 s after which the web site's client of the
# core (maosic.http_link.IDLE_REOPEN_S) stops reusing a connection, so the core never closes
# one that client is about to send on; an attacker's silent connection is gone within ~65 s.
CHANNEL_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 30.0  # a request must arrive whole within this (s) of its first byte
CLEANUP_INTERVAL_S = 5  # how often idle connections are looked for (s)
FD_HEADROOM = 256  # descriptors kept for everything but client connections (database, logs...)
FD_SOFT_TARGET = 65536  # when raising the soft limit, raise it this far (if the hard allows)
THREADS = 4  # worker threads: the apps are CPU-bound under the GIL (see cloud/serve.py)
ACCEPT_BURST = 64  # connections accepted per turn of the poll loop at most


class _DeadlineChannel(HTTPChannel):
    """An HTTPChannel that closes itself when a request takes longer than the server's
    ``request_timeout_s`` to arrive (``request_timeout_s`` set on the server by
    :func:`make_wsgi_server`)."""

    request_started: float | None = None  # time.monotonic() of the partial request's first byte

    def received(self, data: bytes) -> bool:
        before = self.request
        done = super().received(data)
        if self.request is None:
            self.request_started = None  # nothing partial: the request(s) all arrived
        elif self.request is not before:
            self.request_started = time.monotonic()  # a new request began in this data
        return done

    def readable(self) -> bool:
        # Called by the loop on every turn (at least every asyncore_loop_timeout, 1 s): the
        # place to notice an overdue request. While a task runs (self.requests) nothing is read,
        # so only a request still arriving is timed.
        started = self.request_started
        if started is not None and not self.requests and not self.will_close:
            limit = getattr(self.server, "request_timeout_s", None)
            if limit is not None and time.monotonic() - started > limit:
                log.warning(
                    "closing a connection from %s: its request did not arrive within %.1f s",
                    _peer(self.addr),
                    limit,
                )
                self.will_close = True  # writable() is now true; handle_write closes it
                return False
        return super().readable()


def _accept_burst(self: BaseWSGIServer) -> None:
    """A listener's ``handle_accept``: accept every pending connection, up to ``ACCEPT_BURST``
    and the room left under the connection limit (waitress accepts one per turn)."""
    room = self.adj.connection_limit - len(self._map)
    for _ in range(max(1, min(ACCEPT_BURST, room))):
        before = len(self._map)
        BaseWSGIServer.handle_accept(self)  # one connection, or none left to accept
        if len(self._map) == before:
            break


def _peer(addr: Any) -> str:
    return str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)


def ensure_fd_limit(needed: int, target: int = FD_SOFT_TARGET) -> int:
    """Make sure this process may open ``needed`` file descriptors; returns the soft limit.

    When the soft RLIMIT_NOFILE is below ``needed`` it is raised to ``max(needed, target)``,
    capped at the hard limit (an unprivileged process may raise its soft limit that far). Raising
    it past ``needed`` leaves room for a second server in the same process (run.py all-in-one).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        new = max(needed, target)
        if hard != resource.RLIM_INFINITY:
            new = min(new, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            log.info("raised the open-file limit from %d to %d", soft, new)
            soft = new
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d: %s", soft, exc)
    return soft


def make_wsgi_server(
    app: Any,
    host: str,
    port: int,
    *,
    threads: int = THREADS,
    connection_limit: int = CONNECTION_LIMIT,
    channel_timeout_s: int = CHANNEL_TIMEOUT_S,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    cleanup_interval_s: int = CLEANUP_INTERVAL_S,
    ident: str = "maosic",
) -> BaseWSGIServer | MultiSocketServer:
    """A waitress server for the WSGI ``app`` on ``host``:``port`` (0 picks a free port).

    Call ``run()`` to serve (blocks) and ``close()`` to stop.

    threads: worker threads running the app.
    connection_limit: open connections at most (beyond it new ones wait in the listen backlog);
        lowered, with a warning, if the process cannot open that many files.
    channel_timeout_s: seconds (whole, >= 1) after which a connection that is neither receiving
        nor being answered is closed (an idle keep-alive, or one that never sent a byte).
    request_timeout_s: seconds allowed from a request's first byte to its last (headers and
        body); a slower request's connection is closed without an answer.
    cleanup_interval_s: seconds (whole, >= 1) between two searches for idle connections, so an
        idle connection lives between channel_timeout_s and their sum.
    ident: the Server header.
    """
    if threads < 1:
        raise ValueError(f"make_wsgi_server: threads must be >= 1, got {threads}")
    if connection_limit < 1:
        raise ValueError(f"make_wsgi_server: connection_limit must be >= 1, got {connection_limit}")
    if channel_timeout_s < 1 or cleanup_interval_s < 1:
        raise ValueError(
            "make_wsgi_server: channel_timeout_s and cleanup_interval_s must be >= 1 s, got "
            f"{channel_timeout_s} and {cleanup_interval_s}"
        )
    if not request_timeout_s > 0:
        raise ValueError(
            f"make_wsgi_server: request_timeout_s must be > 0 s, got {request_timeout_s}"
        )
    soft = ensure_fd_limit(connection_limit + FD_HEADROOM)
    if soft != resource.RLIM_INFINITY and soft < connection_limit + FD_HEADROOM:
        fitted = max(1, soft - FD_HEADROOM)
        log.warning(
            "the open-file limit (%d) is too low for %d connections: serving at most %d",
            soft,
            connection_limit,
            fitted,
        )
        connection_limit = fitted
    sockets: dict[int, Any] = {}
    server = create_server(
        app,
        map=sockets,
        host=host,
        port=port,
        threads=threads,
        connection_limit=connection_limit,
        channel_timeout=channel_timeout_s,
        cleanup_interval=cleanup_interval_s,
        asyncore_use_poll=True,
        ident=ident,
    )
    # create_server registers one listening server per address in ``sockets`` (several when the
    # host resolves to IPv4 and IPv6); each must hand its connections to the deadline channel
    # and accept them in bursts.
    for listener in list(sockets.values()):
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = _DeadlineChannel
            listener.handle_accept = types.MethodType(_accept_burst, listener)
            listener.request_timeout_s = request_timeout_s  # type: ignore[attr-defined]
    return server
