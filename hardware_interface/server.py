"""JSON-RPC 2.0 over HTTP for the hardware daemon (default port 8888), and its entry points.

    python -m hardware_interface --sim                    # the simulated lab, no file needed
    python -m hardware_interface --config lab.json        # a real lab

POST / with a JSON-RPC 2.0 body; the reply is application/json, or 204 No Content when the
request held only notifications. HTTP/1.1 keep-alive and TCP_NODELAY keep a loopback round trip
well under a millisecond of transport overhead.

Security (docs/security.md): `auth(headers) -> bool` refuses a request with 401 before it reaches
the dispatcher when it returns False (see hardware_interface.auth for bearer tokens), and
`ssl_context` serves HTTPS. TLS is negotiated per connection in the connection's own thread, so a
client that connects and stays silent cannot stall the accept loop, and a plain-HTTP request to
an HTTPS daemon gets a clear 400 refusal instead of a reset connection. A refused token, a
refused or failed TLS handshake and a plain-HTTP attempt are logged at WARNING with the peer's
address.

Idle and slow clients (docs/security.md, issue 17): every connection has its own thread, so a
client that connects and says nothing, or trickles one byte every few seconds ("slowloris"),
holds a thread. Three limits bound them: a connection silent for ``idle_timeout_s`` is closed, a
request must arrive whole within ``request_timeout_s`` of its first byte however steadily it
trickles, and at most ``max_connections`` are open at once. A connection arriving at that limit
makes room by closing the one that has waited longest for a request (one executing a call is
never closed), so however many idle connections an attacker holds, a real client still gets in,
and the thread count stays bounded.

    python -m hardware_interface --sim --tls-cert certs/daemon.pem --client-ca certs/ca.pem \
        --require-client-cert --token-file certs/daemon.tokens
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import signal
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from hardware_interface.auth import (
    AuthHook,
    AuthSetupError,
    bearer_token_auth,
    load_tokens,
    server_ssl_context,
)
from hardware_interface.daemon import LabDaemon, WallClock
from hardware_interface.journal import JournalError
from hardware_interface.jsonrpc import Dispatcher
from hardware_interface.labconfig import ConfigError, LabConfig, load_config, sim_config
from hardware_interface.lease import CALLER_EPOCH, LEASE_HEADER, parse_epoch

try:  # POSIX only: Windows (a lab PC beside the vendors' software) has no such module
    import resource
except ImportError:
    resource = None  # type: ignore[assignment]

log = logging.getLogger("hardware_interface.rpc")

DEFAULT_PORT = 8888
MAX_BODY_BYTES = 1 << 20
LOG_TRUNCATE = 300
CHEMISTRIES = ("cspbbr3", "cs3cu2i5")
LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
TLS_HANDSHAKE_BYTE = b"\x16"  # first byte of every TLS record carrying a ClientHello
TLS_HANDSHAKE_TIMEOUT_S = 10.0  # a client must start and finish its handshake within this
# A kept-alive connection silent this long is closed (s), freeing the thread of a client that
# connected and went quiet. The core's link notices a closed connection and reopens it before
# its next call; the timeout is long (a lab loop takes ~2 min) so that this stays rare, since a
# call sent in the very instant of the close would be lost.
IDLE_TIMEOUT_S = 120.0
# A request (headers and body, a few kB of JSON) must arrive whole within this of its first
# byte (s), however steadily it trickles in: a slowloris client holds a thread this long at most.
REQUEST_TIMEOUT_S = 30.0
# Open connections at most, one thread each (a thread blocked in recv costs tens of kB resident
# and no CPU): the bound on the daemon's threads. It does not bound who gets in, since at the
# limit a newcomer displaces the longest-waiting idle connection. The lab's real clients are a
# handful of core workers; 1000 is 2x the 500 idle connections an attacker held open (issue 17).
# start_daemon raises the soft open-file limit (often 1024) to fit them when the hard one allows.
MAX_CONNECTIONS = 1000
LISTEN_BACKLOG = 1024  # connections the kernel queues for accept() (capped by net.core.somaxconn)
FD_HEADROOM = 128  # descriptors kept for serial lines, pseudo-terminals and logs
_REFUSAL_BODY = b'{"error": "this daemon speaks HTTPS only; plain HTTP refused, nothing executed"}'
PLAIN_HTTP_REFUSAL = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_REFUSAL_BODY)}\r\n\r\n".encode()
    + _REFUSAL_BODY
)


class _DeadlineReader(io.RawIOBase):
    """The raw reader under a connection's ``rfile``: each read waits at most ``idle_s`` for a
    byte, and once a request's first byte has arrived the whole request must arrive by a
    deadline ``request_s`` later (TimeoutError otherwise, which http.server turns into closing
    the connection). ``begin_request`` starts the next request's clock afresh."""

    def __init__(self, sock: socket.socket, idle_s: float, request_s: float, peer: str) -> None:
        super().__init__()
        self._sock = sock
        self.idle_s = idle_s
        self.request_s = request_s
        self.peer = peer
        self.deadline: float | None = None  # time.monotonic() by which the request must be in

    def readable(self) -> bool:
        return True

    def begin_request(self) -> None:
        self.deadline = None

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            received = self._sock.recv_into(buffer)  # the socket's timeout is idle_s
            if received:
                self.deadline = time.monotonic() + self.request_s
            return received
        left = self.deadline - time.monotonic()
        if left >= self.idle_s:
            return self._sock.recv_into(buffer)
        if left <= 0:
            self._overdue()
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            self._overdue()
        finally:
            # the answer is written with the ordinary timeout, not what remained of this one
            self._sock.settimeout(self.idle_s)

    def _overdue(self) -> NoReturn:
        log.warning(
            "closing the connection from %s: its request did not arrive within %.1f s",
            self.peer,
            self.request_s,
        )
        raise TimeoutError(f"request not received whole within {self.request_s} s")


def _log_call(method: str, params: Any, outcome: dict[str, Any]) -> None:
    """One readable INFO line per call that acts on the lab (its method and whether it worked;
    reads that pages poll every second stay out), and the whole call with its payload and
    reply at DEBUG (spectra are long: the text is truncated)."""
    error = outcome.get("error") if isinstance(outcome, dict) else None
    if error is not None or not method.endswith(QUIET_SUFFIXES):
        shown = f"error {error.get('code')}: {error.get('message')}" if error else "ok"
        log.info("%s -> %s", method, str(shown)[:200])
    if not log.isEnabledFor(logging.DEBUG):
        return
    reply = json.dumps(outcome, default=str)
    if len(reply) > LOG_TRUNCATE:
        reply = reply[:LOG_TRUNCATE] + f"... ({len(reply)} chars)"
    log.debug("%s %s -> %s", method, json.dumps(params, default=str), reply)


# Methods that only read (polled by pages and workers): no INFO line each time.
QUIET_SUFFIXES = (".status", ".describe", ".state", ".stock")


@dataclass(eq=False)
class _Connection:
    """An open connection as the accepting thread sees it (guarded by the server's lock)."""

    sock: socket.socket  # the accepted TCP socket (under the TLS layer, if any)
    waiting_since: float  # time.monotonic() since which it waits for a request (or its rest)
    busy: bool = False  # executing a call: never closed to make room
    evicted: bool = False  # closed to make room; its thread is ending


class _RpcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one TCP connection for many calls
    disable_nagle_algorithm = True  # headers and body must not wait for a delayed ACK
    server: _RpcServer

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout_s  # the socket's timeout, set by setup()
        super().setup()
        self.rfile.close()  # replaced by one that also enforces the request deadline
        self._reader = _DeadlineReader(
            self.connection,
            self.server.idle_timeout_s,
            self.server.request_timeout_s,
            str(self.client_address[0]),
        )
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.begin_request()
        self.server.waiting(time.monotonic())
        super().handle_one_request()

    def do_POST(self) -> None:  # noqa: N802 - name fixed by http.server
        auth = self.server.auth
        if auth is not None and not auth(self.headers):
            given = "a wrong" if self.headers.get("Authorization") else "no"
            log.warning("refused a call from %s: %s bearer token", self.client_address[0], given)
            # The unread body would be parsed as the next request on this keep-alive connection.
            self.close_connection = True
            self._send(401, b'{"error": "unauthorized"}')
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self._send(411, b'{"error": "Content-Length required"}')
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread: never reuse this connection
            self._send(413, b'{"error": "request body too large"}')
            return
        body = self.rfile.read(length)
        epoch = parse_epoch(self.headers.get(LEASE_HEADER))
        if isinstance(epoch, str):
            self.close_connection = True
            self._send(400, json.dumps({"error": epoch}).encode())
            return
        if not self.server.set_busy(True):
            self.close_connection = True  # closed to make room before the call began: not run
            return
        token = CALLER_EPOCH.set(epoch)
        try:
            reply = self.server.dispatcher.handle(body)
        finally:
            CALLER_EPOCH.reset(token)
            self.server.set_busy(False)
        if reply is None:
            self._send(204, b"")
        else:
            self._send(200, reply)

    def do_GET(self) -> None:  # noqa: N802
        self._send(405, b'{"error": "use POST with a JSON-RPC 2.0 body"}')

    def _send(self, status: int, body: bytes) -> None:
        # Status line, headers and body in one write: written apart (as send_response and
        # end_headers do) they cost a second send per call and, on a loaded machine, a wake-up
        # of the client for a partial answer.
        self.log_request(status)
        lines = [
            f"{self.protocol_version} {status} {self.responses[status][0]}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        if body:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("%s %s", self.address_string(), format % args)


class _RpcServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The kernel's queue of connections not yet accepted (socketserver's default is 5). A burst
    # of connections overflowing it has the kernel drop SYNs, and a real client caught in the
    # burst waits out TCP's 1 s, 3 s, ... retransmissions: 500 connections took 80 s to open.
    request_queue_size = LISTEN_BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        dispatcher: Dispatcher,
        auth: AuthHook | None,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        super().__init__(address, _RpcHandler)
        self.dispatcher = dispatcher
        self.auth = auth
        self.ssl_context = ssl_context
        self.idle_timeout_s = idle_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        self._lock = threading.Lock()  # guards _connections, _evicted and every _Connection
        self._connections: dict[int, _Connection] = {}  # id(accepted socket) -> its record
        self._evicted = 0  # records closed to make room whose threads have not ended yet
        self._overflow = False  # logged once per episode
        self._local = threading.local()  # .connection: the record of this thread's connection

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Runs in the accepting thread before a thread is started for the connection; False
        # closes it at once.
        now = time.monotonic()
        with self._lock:
            if len(self._connections) - self._evicted >= self.max_connections:
                victim = self._longest_waiting()
                # the hard ceiling bounds the threads even while evicted ones are still ending
                if victim is None or len(self._connections) >= 2 * self.max_connections:
                    self._note_overflow(f"all busy: refusing {client_address[0]}")
                    return False
                victim.evicted = True
                self._evicted += 1
                with contextlib.suppress(OSError):
                    victim.sock.shutdown(socket.SHUT_RDWR)  # its blocked read returns at once
                self._note_overflow("closing the longest-waiting ones to make room")
            elif self._overflow:
                self._overflow = False
                log.info("open connections below %d again", self.max_connections)
            self._connections[id(request)] = _Connection(request, now)
        return True

    def _longest_waiting(self) -> _Connection | None:
        candidates = [c for c in self._connections.values() if not (c.busy or c.evicted)]
        return min(candidates, key=lambda c: c.waiting_since, default=None)

    def _note_overflow(self, what: str) -> None:
        if not self._overflow:
            self._overflow = True
            log.warning("%d connections open: %s", self.max_connections, what)

    def waiting(self, since: float) -> None:
        """This thread's connection now waits for its next request."""
        connection = self._local.connection
        with self._lock:
            connection.waiting_since = since

    def set_busy(self, busy: bool) -> bool:
        """Mark this thread's connection as executing a call (or done); False when it was
        already closed to make room, in which case the call must not run."""
        connection = self._local.connection
        with self._lock:
            if connection.evicted:
                return False
            connection.busy = busy
            return True

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started (out of threads?): forget the connection
            with self._lock:
                self._connections.pop(id(request), None)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._local.connection = self._connections[id(request)]
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                connection = self._connections.pop(id(request))
                if connection.evicted:
                    self._evicted -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets its connection mid-request is no server error: no traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("connection from %s broke: %s", client_address[0], exc)
            return
        super().handle_error(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if not first:
            return  # closed before it said anything (by the client, or to make room)
        if first != TLS_HANDSHAKE_BYTE:
            # Not a TLS ClientHello (plain HTTP or junk): refuse in words, execute nothing.
            with contextlib.suppress(OSError):
                request.sendall(PLAIN_HTTP_REFUSAL)
            log.warning("refused an unencrypted connection from %s", client_address[0])
            return
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.warning("TLS handshake with %s failed: %s", client_address[0], exc)
            return
        tls.settimeout(None)
        try:
            super().finish_request(tls, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls.close()


@dataclass
class SimBackend:
    """The simulated lab behind a daemon: the SimLab, its emulators and how they are reached."""

    world: Any
    emulators: dict[str, Any]
    lab_key: str
    bridges: list[Any] = field(default_factory=list)  # PtyBridge per device in pty mode

    def close(self) -> None:
        from hardware_interface.sim.emulators import registry

        for bridge in self.bridges:
            bridge.close()
        registry.unregister_lab(self.lab_key)
        self.world.close()  # its physical state, to its state file if it has one


@dataclass
class DaemonHandle:
    """A running daemon: `url` to POST to, `lab` the SimLab (simulated) or None."""

    url: str
    port: int
    daemon: LabDaemon
    sim: SimBackend | None = None
    _server: _RpcServer | None = None
    _thread: threading.Thread | None = None

    @property
    def lab(self) -> Any:
        """The SimLab world model (simulated daemon), for tests and ground truth; else None."""
        return None if self.sim is None else self.sim.world

    @property
    def emulators(self) -> dict[str, Any]:
        """Module id -> device emulator (simulated daemon; for fault injection in tests)."""
        return {} if self.sim is None else self.sim.emulators

    def stop(self) -> None:
        """Stop serving, close the device lines and tear down the simulated lab."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.daemon.close()
        if self.sim is not None:
            self.sim.close()
            self.sim = None

    def __enter__(self) -> DaemonHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_sim_daemon(
    chemistry: str = "cspbbr3",
    seed: int = 0,
    speed: float = 0.0,
    config_path: str | None = None,
    pty: bool = False,
    journal_path: str | Path | None = None,
    sim_state_path: str | Path | None = None,
) -> tuple[LabDaemon, SimBackend]:
    """A LabDaemon whose real drivers talk bytes to emulators over a SimLab.

    config_path: optionally a simulated-lab file (like examples/lab_sim.json) whose ports are all
    maosicsim://KEY/ID, e.g. to run the twin with other safety limits.
    pty: serve every emulator on its own pseudo-terminal and open the drivers on /dev/pts/N
    (the OS serial path) instead of the in-process maosicsim:// handler.
    journal_path: the daemon's journal (lease, stock ledger, what it believes the lab holds);
    None keeps it in memory. sim_state_path: the simulated lab's physical state file (syringes,
    stock bottles, heater, arm), so that a daemon restart finds the lab as it was, as with
    hardware; None starts a fresh lab. Both may name files that do not exist yet.
    """
    from hardware_interface.sim.emulators.lab import new_lab_key, serve_lab
    from hardware_interface.sim.state_file import SimStateError
    from hardware_interface.sim.world import SimLab

    if chemistry not in CHEMISTRIES:
        raise ConfigError(f"unknown chemistry {chemistry!r}; choose from {list(CHEMISTRIES)}")
    try:
        world = SimLab(
            chemistry=chemistry,
            seed=seed,
            speed=speed,
            state_path=None if sim_state_path is None else Path(sim_state_path),
        )
    except SimStateError as exc:
        raise ConfigError(str(exc)) from exc
    if config_path is None:
        lab_key = new_lab_key()
        config = sim_config(chemistry, lab_key)
    else:
        loaded = load_config(config_path)
        keys = {urlsplit(d.port).netloc for d in loaded.devices.values()}
        schemes = {urlsplit(d.port).scheme for d in loaded.devices.values()}
        if schemes != {"maosicsim"} or len(keys) != 1:
            raise ConfigError(
                f"{config_path}: with --sim every port must be maosicsim://KEY/ID with one KEY"
            )
        lab_key = keys.pop()
        config = replace(loaded, simulated=True, chemistry=chemistry)
        _check_sim_rig(config, world, config_path)
    emulators = serve_lab(world, config, lab_key)
    backend = SimBackend(world, emulators, lab_key)
    if pty:
        # pseudo-terminals are POSIX-only: imported only when asked for, never on Windows
        from hardware_interface.sim.emulators.pty_bridge import PtyBridge

        devices = {}
        for dev_id, dev in config.devices.items():
            bridge = PtyBridge(emulators[dev_id])
            backend.bridges.append(bridge)
            # a real tty is slower than the in-process handler: allow it a real timeout
            devices[dev_id] = replace(dev, port=bridge.port, timeout_s=max(dev.timeout_s, 0.5))
        config = replace(config, devices=devices)
    journal = None if journal_path is None else Path(journal_path)
    try:
        return LabDaemon(config, world.clock, journal_path=journal), backend
    except BaseException:  # e.g. a journal that cannot be read: no emulators left registered
        backend.close()
        raise


def _check_sim_rig(config: LabConfig, world: Any, config_path: str | Path) -> None:
    """Refuse a lab file the simulated world cannot stand behind: a pump the world has no line
    for, or a reagent it has no bottle of. Started on the wrong chemistry, such a rig would
    come up and then fail every fill (or report a pump busy for ever)."""
    bottles = set(world.reagents)
    for dev_id, dev in config.devices.items():
        if dev.kind != "pump":
            continue
        if dev_id not in world.pump_ids:
            raise ConfigError(
                f"{config_path}: pump {dev_id} has no line in the simulated {world.chemistry} "
                f"lab (its pumps: {', '.join(world.pump_ids)}); is --chemistry right?"
            )
        if dev.reagent is not None and config.reagent_name(dev.reagent) not in bottles:
            raise ConfigError(
                f"{config_path}: pump {dev_id} draws {dev.reagent!r}, which the simulated "
                f"{world.chemistry} lab has no bottle of (it has {', '.join(sorted(bottles))}); "
                "is --chemistry right?"
            )


def default_journal_path(config_path: str | Path) -> Path:
    """Where a real lab's journal lives unless told: beside its configuration file, named after
    it (lab.json -> lab.journal.json), since it describes that lab and must outlive restarts."""
    config = Path(config_path)
    return config.with_name(config.stem + ".journal.json")


def start_daemon(
    sim: bool = True,
    port: int = 0,
    host: str = "127.0.0.1",
    chemistry: str = "cspbbr3",
    seed: int = 0,
    speed: float = 0.0,
    config_path: str | None = None,
    watchdog_s: float = 0.5,
    auth: AuthHook | None = None,
    ssl_context: ssl.SSLContext | None = None,
    sim_pty: bool = False,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
    journal_path: str | Path | None = None,
    sim_state_path: str | Path | None = None,
) -> DaemonHandle:
    """Serve the daemon in a background thread; port 0 picks a free port.

    sim: the simulated lab (SimLab + emulators; `config_path` optionally a maosicsim:// lab
    file), else the real lab described by `config_path`.
    watchdog_s: wall seconds between heater safety reads (0 disables the watchdog thread).
    sim_pty: in simulation, reach the emulators through pseudo-terminals (see build_sim_daemon).
    auth: refuse (401) a request for which auth(headers) is False; ssl_context: serve HTTPS only
    (hardware_interface.auth builds both). None for both serves plain HTTP to anyone.
    idle_timeout_s: seconds a connection may stay silent (between calls, or before its first
    byte) before it is closed. request_timeout_s: seconds from a request's first byte by which
    all of it must have arrived, else the connection is closed. max_connections: open
    connections at most (one thread each); a connection arriving at the limit closes the one that
    has waited longest for a request (never one executing a call), or is itself closed when all
    are executing calls. It is lowered, with a warning, when the process may not open enough
    files.
    journal_path: the daemon's journal (lease epoch, stock ledger, what it believes each syringe
    holds, the heater's setpoint, the arm's position). A real lab always has one: by default
    beside its configuration file (default_journal_path); a simulated lab keeps it in memory
    unless given. sim_state_path: simulation only, the SimLab's physical state file.
    """
    if idle_timeout_s <= 0 or request_timeout_s <= 0 or max_connections < 1:
        raise ValueError(
            "start_daemon: idle_timeout_s and request_timeout_s must be > 0 s and "
            f"max_connections >= 1, got {idle_timeout_s}, {request_timeout_s}, {max_connections}"
        )
    max_connections = _fit_connections(max_connections)
    backend = None
    if sim:
        daemon, backend = build_sim_daemon(
            chemistry, seed, speed, config_path, sim_pty, journal_path, sim_state_path
        )
    else:
        if config_path is None:
            raise ConfigError("a real lab needs --config LAB.json (or use --sim)")
        if sim_state_path is not None:
            raise ConfigError("a simulated lab state file is for --sim only")
        config: LabConfig = load_config(config_path)
        journal = default_journal_path(config_path) if journal_path is None else journal_path
        daemon = LabDaemon(config, WallClock(), journal_path=Path(journal))
    dispatcher = Dispatcher(daemon.lease.guard(daemon.methods()), on_call=_log_call)
    server = _RpcServer(
        (host, port),
        dispatcher,
        auth,
        ssl_context,
        idle_timeout_s=idle_timeout_s,
        request_timeout_s=request_timeout_s,
        max_connections=max_connections,
    )
    actual_port = server.server_address[1]
    scheme = "https" if ssl_context is not None else "http"
    # A short poll interval makes stop() quick (shutdown waits for the next poll).
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="rpc-server", daemon=True
    )
    thread.start()
    daemon.start_watchdog(watchdog_s)
    url = f"{scheme}://{host}:{actual_port}/"
    log.info("hardware daemon (%s) serving on %s", daemon.config.lab, url)
    return DaemonHandle(url, actual_port, daemon, backend, server, thread)


def _fit_connections(max_connections: int) -> int:
    """``max_connections``, after raising this process's soft open-file limit toward the hard
    one if it is too low for them; lowered (with a warning) if even the hard limit is.

    Without the POSIX ``resource`` module (Windows) it is returned unchanged: Windows sockets are
    handles with no per-process soft limit of this kind to raise."""
    if resource is None:
        return max_connections
    needed = max_connections + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return max_connections
    new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit from %d: %s", soft, exc)
    if soft >= needed:
        return max_connections
    fitted = max(1, soft - FD_HEADROOM)
    log.warning("open-file limit %d: serving at most %d connections", soft, fitted)
    return fitted


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hardware_interface",
        description="MAOSIC hardware daemon: JSON-RPC 2.0 over HTTP to the lab's instruments.",
    )
    parser.add_argument("--sim", action="store_true", help="serve the simulated lab")
    parser.add_argument("--config", help="lab configuration JSON (real lab)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (8888)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="sim speed: 0 = instant waits, N = N times real time")  # fmt: skip
    parser.add_argument("--chemistry", choices=CHEMISTRIES, default="cspbbr3")
    parser.add_argument("--sim-pty", action="store_true",
                        help="sim: reach the emulators over pseudo-terminals")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-level", default="INFO", choices=list(LOG_LEVELS))
    parser.add_argument(
        "--journal",
        metavar="PATH",
        help="the daemon's journal on the lab PC: lease epoch, stock ledger and what it believes "
        "each syringe holds, the heater's setpoint and the arm's position, kept across restarts "
        "(real lab default: beside --config, LAB.journal.json for LAB.json; --sim default: in "
        "memory only)",
    )
    parser.add_argument(
        "--sim-state",
        metavar="PATH",
        help="sim: keep the simulated lab's physical state (syringes, stock bottles, heater, "
        "arm) in this file across restarts, as hardware keeps it (default: a fresh lab)",
    )
    sec = parser.add_argument_group("security (docs/security.md)")
    sec.add_argument("--tls-cert", help="PEM certificate of the daemon: serve HTTPS only")
    sec.add_argument("--tls-key", help="PEM key of --tls-cert (if not in the same file)")
    sec.add_argument("--client-ca", help="lab CA certificate that signs client certificates")
    sec.add_argument(
        "--require-client-cert",
        action="store_true",
        help="refuse any TLS client without a certificate signed by --client-ca",
    )
    sec.add_argument("--token-file", help="file of bearer tokens (one a line) a caller must send")
    return parser


def _security(args: argparse.Namespace) -> tuple[AuthHook | None, ssl.SSLContext | None]:
    """The auth hook and TLS context the flags ask for (raises AuthSetupError)."""
    context = None
    if args.tls_cert:
        context = server_ssl_context(
            args.tls_cert, args.tls_key, args.client_ca, args.require_client_cert
        )
    elif args.tls_key or args.client_ca or args.require_client_cert:
        raise AuthSetupError("--tls-key, --client-ca and --require-client-cert need --tls-cert")
    auth = bearer_token_auth(load_tokens(args.token_file)) if args.token_file else None
    return auth, context


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (run.py hardware ... calls this); returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=LOG_LEVELS[args.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.sim and not args.config:
        print("error: give --sim or --config LAB.json")
        return 2
    if not 0 <= args.port <= 65535 or args.speed < 0:
        print("error: --port must be 0..65535 and --speed >= 0")
        return 2
    if args.sim_state and not args.sim:
        print("error: --sim-state is for the simulated lab (--sim)")
        return 2
    try:
        auth, context = _security(args)
        handle = start_daemon(
            sim=args.sim,
            port=args.port,
            host=args.host,
            chemistry=args.chemistry,
            seed=args.seed,
            speed=args.speed,
            config_path=args.config,
            sim_pty=args.sim_pty,
            auth=auth,
            ssl_context=context,
            journal_path=args.journal,
            sim_state_path=args.sim_state,
        )
    except (ConfigError, AuthSetupError, JournalError, OSError) as exc:
        print(f"error: {exc}")
        return 1
    stop = threading.Event()
    # SIGTERM (service manager, kill) must also leave the instruments safe, like Ctrl-C; set
    # before the URL is printed, since whoever reads it may stop the daemon at once.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    print(f"hardware daemon serving on {handle.url} (Ctrl-C to stop)", flush=True)
    # Say it loudly (on stderr: stdout's first line is the URL, which scripts read): plain HTTP
    # is only acceptable on loopback in the simulated all-in-one.
    if context is None:
        print(f"WARNING: no TLS: the link to {handle.url} is unencrypted (--tls-cert to encrypt)",
              file=sys.stderr)  # fmt: skip
    if auth is None and (context is None or not args.require_client_cert):
        print("WARNING: no authentication: anyone who reaches this port may command the lab",
              file=sys.stderr, flush=True)  # fmt: skip
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.daemon.emergency_stop("daemon shutting down", emergency=False)
        handle.stop()
    return 0
