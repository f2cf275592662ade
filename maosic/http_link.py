"""One persistent HTTP/1.1 connection (plain or TLS) that POSTs JSON bodies to the daemon.

The core sends an experiment's calls one after another to one daemon, so a single kept-alive
socket is all it needs. Written on the standard library instead of ``requests`` because the
latter spent about half a millisecond per call on work this link has no use for (proxy lookup
in the environment, cookie and hook handling, a header and a body write per request), and an
experiment makes about a dozen calls. Request bytes go out in one write with TCP_NODELAY.

Failures are told apart by whether the request can have reached the daemon, because only a
request that cannot have been executed may be sent again:

- :class:`NotDelivered`: the connection could not be made (refused, unresolvable, connect
  timeout) or broke while the request was being written; the daemon cannot have run it.
- :class:`HandshakeFailed`: the TLS handshake failed (certificate not trusted, refused); nothing
  was sent, and trying again will not help.
- :class:`AnswerTimeout`, :class:`AnswerLost`: the request was sent and its answer did not come
  in time or broke off; the daemon may or may not have executed it.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class LinkError(RuntimeError):
    """Base of this module's errors; ``__cause__`` holds the socket or TLS error."""


class NotDelivered(LinkError):
    """The request cannot have reached the daemon."""


class HandshakeFailed(LinkError):
    """TLS could not be set up; no request was sent."""


class AnswerTimeout(LinkError):
    """The request was sent; no answer came within the read timeout."""


class AnswerLost(LinkError):
    """The request was sent; the connection closed or broke before the whole answer came."""

    def __init__(self, message: str, *, began: bool):
        super().__init__(message)
        self.began = began  # True when the answer had started (its status line had come)


@dataclass
class Reply:
    status: int
    body: bytes


class HttpLink:
    """POST to one URL over one kept-alive connection, reopened when the daemon closed it."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        ssl_context: ssl.SSLContext | None,
        connect_timeout_s: float,
        timeout_s: float,
    ):
        """``connect_timeout_s``: TCP connect and TLS handshake (s); ``timeout_s``: answer (s)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"daemon URL {url!r} must be http://host:port/ or https://host:port/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = parts.scheme == "https"
        if self.tls and ssl_context is None:
            ssl_context = ssl.create_default_context()
        self.ssl_context = ssl_context
        self.connect_timeout_s = connect_timeout_s
        self.timeout_s = timeout_s
        host_header = self.host if parts.port is None else f"{self.host}:{self.port}"
        lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = "\r\n".join(lines).encode("latin-1")
        self._sock: socket.socket | None = None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def post(self, body: bytes) -> Reply:
        """Send ``body`` as a JSON POST and return the answer; raises this module's errors."""
        sock = self._connected()
        request = self._head + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        try:
            sock.settimeout(self.timeout_s)
            sock.sendall(request)
        except OSError as exc:
            # A request cut off while being written is never run: the daemon reads the whole
            # Content-Length before it parses anything.
            self.close()
            raise NotDelivered(f"the connection broke while sending: {exc}") from exc
        response = http.client.HTTPResponse(sock, method="POST")
        began = False
        try:
            response.begin()
            began = True
            data = response.read()
        except TimeoutError as exc:
            self.close()
            raise AnswerTimeout(f"no answer within {self.timeout_s} s") from exc
        except (http.client.HTTPException, OSError) as exc:
            self.close()
            raise AnswerLost(f"{type(exc).__name__}: {exc}", began=began) from exc
        if response.will_close:
            self.close()
        return Reply(response.status, data)

    def _connected(self) -> socket.socket:
        if self._sock is not None and not _idle_and_open(self._sock):
            self.close()  # the daemon closed it (restart, 401) or sent something unasked
        if self._sock is None:
            self._sock = self._open()
        return self._sock

    def _open(self) -> socket.socket:
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            raise NotDelivered(_connect_reason(exc)) from exc
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is None:
            return raw
        try:
            return self.ssl_context.wrap_socket(raw, server_hostname=self.host)
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raw.close()
            where = f"{self.host}:{self.port}"
            raise HandshakeFailed(f"TLS handshake with {where} failed: {exc}") from exc
        except OSError as exc:
            raw.close()
            raise NotDelivered(f"the connection broke during the TLS handshake: {exc}") from exc


def _idle_and_open(sock: socket.socket) -> bool:
    """True when a kept-alive socket has nothing to read: the peer has not closed it."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _connect_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"failed to resolve the host name: {exc}"
    if isinstance(exc, TimeoutError):
        return "connect timed out"
    return str(exc) or type(exc).__name__
