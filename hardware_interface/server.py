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
an HTTPS daemon gets a clear 400 refusal instead of a reset connection.

    python -m hardware_interface --sim --tls-cert certs/daemon.pem --client-ca certs/ca.pem \
        --require-client-cert --token-file certs/daemon.tokens
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import ssl
import sys
import threading
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from hardware_interface.auth import (
    AuthHook,
    AuthSetupError,
    bearer_token_auth,
    load_tokens,
    server_ssl_context,
)
from hardware_interface.daemon import LabDaemon, WallClock
from hardware_interface.jsonrpc import Dispatcher
from hardware_interface.labconfig import ConfigError, LabConfig, load_config, sim_config

log = logging.getLogger("hardware_interface.rpc")

DEFAULT_PORT = 8888
MAX_BODY_BYTES = 1 << 20
LOG_TRUNCATE = 300
CHEMISTRIES = ("cspbbr3", "cs3cu2i5")
LOG_LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING}
TLS_HANDSHAKE_BYTE = b"\x16"  # first byte of every TLS record carrying a ClientHello
TLS_HANDSHAKE_TIMEOUT_S = 10.0  # a client must start and finish its handshake within this
_REFUSAL_BODY = b'{"error": "this daemon speaks HTTPS only; plain HTTP refused, nothing executed"}'
PLAIN_HTTP_REFUSAL = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_REFUSAL_BODY)}\r\n\r\n".encode()
    + _REFUSAL_BODY
)


def _log_call(method: str, params: Any, outcome: dict[str, Any]) -> None:
    """Log every command and its reply (spectra are long: the text is truncated)."""
    if not log.isEnabledFor(logging.INFO):
        return
    reply = json.dumps(outcome, default=str)
    if len(reply) > LOG_TRUNCATE:
        reply = reply[:LOG_TRUNCATE] + f"... ({len(reply)} chars)"
    log.info("%s %s -> %s", method, json.dumps(params, default=str), reply)


class _RpcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one TCP connection for many calls
    disable_nagle_algorithm = True  # headers and body must not wait for a delayed ACK
    server: _RpcServer

    def do_POST(self) -> None:  # noqa: N802 - name fixed by http.server
        auth = self.server.auth
        if auth is not None and not auth(self.headers):
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
        reply = self.server.dispatcher.handle(body)
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

    def __init__(
        self,
        address: tuple[str, int],
        dispatcher: Dispatcher,
        auth: AuthHook | None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(address, _RpcHandler)
        self.dispatcher = dispatcher
        self.auth = auth
        self.ssl_context = ssl_context

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(TLS_HANDSHAKE_TIMEOUT_S)
        try:
            first = request.recv(1, socket.MSG_PEEK)
        except OSError:
            return
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
) -> tuple[LabDaemon, SimBackend]:
    """A LabDaemon whose real drivers talk bytes to emulators over a fresh SimLab.

    config_path: optionally a simulated-lab file (like examples/lab_sim.json) whose ports are all
    maosicsim://KEY/ID, e.g. to run the twin with other safety limits.
    pty: serve every emulator on its own pseudo-terminal and open the drivers on /dev/pts/N
    (the OS serial path) instead of the in-process maosicsim:// handler.
    """
    from hardware_interface.sim.emulators.lab import new_lab_key, serve_lab
    from hardware_interface.sim.emulators.pty_bridge import PtyBridge
    from hardware_interface.sim.world import SimLab

    if chemistry not in CHEMISTRIES:
        raise ConfigError(f"unknown chemistry {chemistry!r}; choose from {list(CHEMISTRIES)}")
    world = SimLab(chemistry=chemistry, seed=seed, speed=speed)
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
    emulators = serve_lab(world, config, lab_key)
    backend = SimBackend(world, emulators, lab_key)
    if pty:
        devices = {}
        for dev_id, dev in config.devices.items():
            bridge = PtyBridge(emulators[dev_id])
            backend.bridges.append(bridge)
            # a real tty is slower than the in-process handler: allow it a real timeout
            devices[dev_id] = replace(dev, port=bridge.port, timeout_s=max(dev.timeout_s, 0.5))
        config = replace(config, devices=devices)
    return LabDaemon(config, world.clock), backend


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
) -> DaemonHandle:
    """Serve the daemon in a background thread; port 0 picks a free port.

    sim: the simulated lab (SimLab + emulators; `config_path` optionally a maosicsim:// lab
    file), else the real lab described by `config_path`.
    watchdog_s: wall seconds between heater safety reads (0 disables the watchdog thread).
    sim_pty: in simulation, reach the emulators through pseudo-terminals (see build_sim_daemon).
    auth: refuse (401) a request for which auth(headers) is False; ssl_context: serve HTTPS only
    (hardware_interface.auth builds both). None for both serves plain HTTP to anyone.
    """
    backend = None
    if sim:
        daemon, backend = build_sim_daemon(chemistry, seed, speed, config_path, sim_pty)
    else:
        if config_path is None:
            raise ConfigError("a real lab needs --config LAB.json (or use --sim)")
        config: LabConfig = load_config(config_path)
        daemon = LabDaemon(config, WallClock())
    dispatcher = Dispatcher(daemon.methods(), on_call=_log_call)
    server = _RpcServer((host, port), dispatcher, auth, ssl_context)
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
        )
    except (ConfigError, AuthSetupError, OSError) as exc:
        print(f"error: {exc}")
        return 1
    print(f"hardware daemon serving on {handle.url} (Ctrl-C to stop)", flush=True)
    # Say it loudly (on stderr: stdout's first line is the URL, which scripts read): plain HTTP
    # is only acceptable on loopback in the simulated all-in-one.
    if context is None:
        print(f"WARNING: no TLS: the link to {handle.url} is unencrypted (--tls-cert to encrypt)",
              file=sys.stderr)  # fmt: skip
    if auth is None and (context is None or not args.require_client_cert):
        print("WARNING: no authentication: anyone who reaches this port may command the lab",
              file=sys.stderr, flush=True)  # fmt: skip
    stop = threading.Event()
    # SIGTERM (service manager, kill) must also leave the instruments safe, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handle.daemon.emergency_stop("daemon shutting down")
        handle.stop()
    return 0
