"""A small JSON-RPC 2.0 client over HTTP for the core (port 9999) and the daemon (port 8888).

The web site never talks to the queue tables directly when it *changes* something: submission
and cancellation go to the core's handler, manual control goes to the daemon. Failures come
back as :class:`RpcFailure` (the server answered with an error object) or
:class:`RpcUnavailable` (nobody answered), so a page can tell "your input is wrong" apart from
"the lab is down".
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

# Reopen a keep-alive connection idle this long (s): well under waitress's 120 s
# channel_timeout, so the core never closes one we are about to use.
IDLE_REOPEN_S = 30.0


class RpcFailure(RuntimeError):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} (code {code})")
        self.code, self.message, self.data = code, message, data


class RpcUnavailable(RuntimeError):
    """No usable answer: connection refused, timeout, or not JSON-RPC."""


class RpcCaller(Protocol):
    """What the blueprints need from a client; tests may pass any object with ``call``."""

    url: str

    def call(self, method: str, *, as_user: str | None = None, **params: Any) -> Any: ...


class RpcClient:
    """Calls ``method`` with named params on ``url``; ``timeout_s`` bounds each HTTP call (s).

    Plain ``http://`` (the core on loopback) goes over one keep-alive ``http.client``
    connection per web worker thread: ``requests`` cost ~1.5 ms of CPU per call, stat'ed its CA
    bundle on every call even without TLS, and opened a new TCP connection each time, all in the
    process that serves the pages. ``https://`` (a remote daemon) keeps ``requests`` and its
    certificate handling, with one keep-alive session per thread.
    """

    def __init__(self, url: str, timeout_s: float = 30.0, token: str = ""):
        self.url = url
        self.timeout_s = timeout_s
        self._token = token
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        parts = urlsplit(url)
        self._plain = parts.scheme == "http" and bool(parts.hostname)
        self._host, self._port = parts.hostname or "", parts.port or 80
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Per thread: neither an http.client connection nor a requests.Session may be shared.
        self._local = threading.local()

    def call(self, method: str, *, as_user: str | None = None, **params: Any) -> Any:
        """``as_user``: the account the call acts for (the logged-in user), sent with the
        installation's token; the core trusts that pairing only (see maosic.rpc_auth)."""
        with self._lock:
            call_id = next(self._ids)
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": call_id}
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if as_user is not None:
            headers["X-MAOSIC-User"] = as_user
        try:
            if self._plain:
                status, raw = self._post_plain(json.dumps(body).encode(), headers)
            else:
                status, raw = self._post_requests(body, headers)
        except (OSError, http.client.HTTPException, requests.RequestException) as exc:
            raise RpcUnavailable(f"{self.url} did not answer {method}: {exc}") from exc
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise RpcUnavailable(
                f"{self.url} answered {method} with HTTP {status}, not JSON-RPC"
            ) from exc
        if not isinstance(data, dict):
            raise RpcUnavailable(f"{self.url} answered {method} with a malformed reply")
        if "error" in data and data["error"] is not None:
            err = data["error"]
            raise RpcFailure(int(err.get("code", -32603)), str(err.get("message")), err.get("data"))
        return data.get("result")

    def _post_plain(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        last_used = getattr(self._local, "last_used", 0.0)
        if conn is not None and time.monotonic() - last_used > IDLE_REOPEN_S:
            # The server may be closing it right now; a POST must not race that (it would be
            # ambiguous whether a submission arrived), so an idle connection is never reused.
            conn.close()
            conn = None
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(
                self._host, self._port, timeout=self.timeout_s
            )
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            reply = conn.getresponse()
            raw = reply.read()
        except BaseException:
            conn.close()
            self._local.conn = None
            raise
        self._local.last_used = time.monotonic()
        if reply.will_close:
            conn.close()
            self._local.conn = None
        return reply.status, raw

    def _post_requests(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        reply = session.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        return reply.status_code, reply.content
