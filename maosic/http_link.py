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
  was sent, and trying again will not help. Two cases are told apart because their remedy is a
  setting: :class:`CertificateRejected` (we do not trust the daemon's certificate) and
  :class:`ClientCertificateRefused` (the daemon refused the handshake over our client
  certificate, missing or not signed by its CA). With TLS 1.3 the daemon's refusal arrives as an
  alert only when the first answer is read, after the request bytes were written: the daemon
  had not finished the handshake, so it never read them, and the refusal is still a
  ``ClientCertificateRefused``, not a lost answer.
- :class:`AnswerTimeout`, :class:`AnswerLost`: the request was sent and its answer did not come
  in time or broke off; the daemon may or may not have executed it.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

# Longest wait for a TLS 1.3 server's verdict on our client certificate after the handshake (s).
VERDICT_WAIT_S = 1.0
# A kept-alive connection idle this long (s) is reopened rather than reused: the daemon closes
# idle connections after 120 s and the core after 60 s (maosic.wsgi_server.CHANNEL_TIMEOUT_S),
# and a call sent just as a server does so would be "lost" although it never ran. Half the
# shorter one leaves the close no chance to cross our request.
IDLE_REOPEN_S = 30.0


class LinkError(RuntimeError):
    """Base of this module's errors; ``__cause__`` holds the socket or TLS error."""


class NotDelivered(LinkError):
    """The request cannot have reached the daemon."""


class HandshakeFailed(LinkError):
    """TLS could not be set up; no request was sent."""


class CertificateRejected(HandshakeFailed):
    """The daemon's certificate failed verification (not signed by the CA we trust, wrong host
    name, expired); ``verify_code``/``verify_message`` are OpenSSL's."""

    def __init__(self, message: str, verify_code: int, verify_message: str):
        super().__init__(message)
        self.verify_code = verify_code
        self.verify_message = verify_message


class ClientCertificateRefused(HandshakeFailed):
    """The daemon refused the handshake over our client certificate (none, or one it does not
    accept); ``alert`` is the TLS alert it sent, e.g. ``TLSV13_ALERT_CERTIFICATE_REQUIRED``."""

    def __init__(self, message: str, alert: str):
        super().__init__(message)
        self.alert = alert


# TLS alerts a server sends when it refuses the client's certificate (or its absence). A TLS 1.2
# server that requires a certificate and gets none answers with a plain handshake failure.
CLIENT_CERT_ALERTS = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
    }
)


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
        self._fresh = False  # the socket has not carried a complete exchange yet
        self._last_used = 0.0  # time.monotonic() of the last complete exchange

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> Reply:
        """Send ``body`` as a JSON POST and return the answer; raises this module's errors.

        ``headers``: sent with this request only (the lease epoch, which changes)."""
        sock = self._connected()
        extra = "".join(f"\r\n{name}: {value}" for name, value in (headers or {}).items())
        request = (
            self._head + f"{extra}\r\nContent-Length: {len(body)}\r\n\r\n".encode("latin-1") + body
        )
        try:
            sock.settimeout(self.timeout_s)
            sock.sendall(request)
        except OSError as exc:
            # A request cut off while being written is never run: the daemon reads the whole
            # Content-Length before it parses anything.
            self.close()
            alert = _client_cert_alert(exc)
            if alert is not None:
                raise ClientCertificateRefused(
                    f"the daemon at {self.host}:{self.port} refused the TLS handshake: {exc}",
                    alert,
                ) from exc
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
            fresh = self._fresh
            self.close()
            alert = _client_cert_alert(exc)
            if fresh and not began and alert is not None:
                # The daemon's handshake ended in this alert: it never read the request.
                raise ClientCertificateRefused(
                    f"the daemon at {self.host}:{self.port} refused the TLS handshake: {exc}",
                    alert,
                ) from exc
            raise AnswerLost(f"{type(exc).__name__}: {exc}", began=began) from exc
        self._fresh = False
        self._last_used = time.monotonic()
        if response.will_close:
            self.close()
        return Reply(response.status, data)

    def _connected(self) -> socket.socket:
        if self._sock is not None and not _idle_and_open(self._sock):
            self.close()  # the daemon closed it (restart, 401) or sent something unasked
        elif self._sock is not None and time.monotonic() - self._last_used > IDLE_REOPEN_S:
            self.close()
        if self._sock is None:
            self._sock = self._open()
            self._fresh = True
        return self._sock

    def _open(self) -> socket.socket:
        try:
            raw = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except OSError as exc:
            raise NotDelivered(_connect_reason(exc)) from exc
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is None:
            return raw
        where = f"{self.host}:{self.port}"
        try:
            tls = self.ssl_context.wrap_socket(raw, server_hostname=self.host)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise CertificateRejected(
                f"TLS handshake with {where} failed: {exc}",
                exc.verify_code,
                str(exc.verify_message),
            ) from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raw.close()
            raise _handshake_error(exc, where) from exc
        except OSError as exc:
            raw.close()
            raise NotDelivered(f"the connection broke during the TLS handshake: {exc}") from exc
        if tls.version() == "TLSv1.3":
            try:
                self._await_verdict(tls, where)
            except LinkError:
                tls.close()
                raise
        return tls

    def _await_verdict(self, tls: ssl.SSLSocket, where: str) -> None:
        """Wait (briefly) for the daemon's verdict on a TLS 1.3 handshake.

        A TLS 1.3 client finishes its handshake before the server has checked the client's
        certificate; the server answers with session tickets when it accepts it, or with an alert
        when it does not. Reading that first flight here tells a refused client certificate
        apart, before any request is written; without it the refusal would race with the
        request's bytes and look like a lost answer. A server that sends no tickets costs at most
        VERDICT_WAIT_S here, and its refusal is still recognised when the answer is read.
        """
        readable, _, _ = select.select([tls], [], [], min(self.connect_timeout_s, VERDICT_WAIT_S))
        if not readable:
            return
        tls.setblocking(False)
        try:
            data = tls.recv(1)
        except ssl.SSLWantReadError:
            return  # only session tickets: the daemon accepted the handshake
        except ssl.SSLError as exc:
            raise _handshake_error(exc, where) from exc
        except OSError as exc:
            raise NotDelivered(f"the connection broke during the TLS handshake: {exc}") from exc
        finally:
            tls.settimeout(self.connect_timeout_s)
        if data:
            raise NotDelivered(f"the daemon at {where} sent data before any request")
        raise NotDelivered(f"the daemon at {where} closed the connection after the TLS handshake")


def _idle_and_open(sock: socket.socket) -> bool:
    """True when a kept-alive socket has nothing to read: the peer has not closed it."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _handshake_error(exc: ssl.SSLError | ssl.CertificateError, where: str) -> LinkError:
    """A failed TLS handshake: the daemon refusing our client certificate, or anything else."""
    alert = _client_cert_alert(exc)
    if alert is not None:
        return ClientCertificateRefused(
            f"the daemon at {where} refused the TLS handshake: {exc}", alert
        )
    return HandshakeFailed(f"TLS handshake with {where} failed: {exc}")


def _client_cert_alert(exc: BaseException) -> str | None:
    """The TLS alert name when ``exc`` is the peer refusing our client certificate, else None."""
    if isinstance(exc, ssl.SSLError) and exc.reason in CLIENT_CERT_ALERTS:
        return str(exc.reason)
    return None


def _connect_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"failed to resolve the host name: {exc}"
    if isinstance(exc, TimeoutError):
        return "connect timed out"
    return str(exc) or type(exc).__name__
