"""A small JSON-RPC 2.0 client over HTTP for the core (port 9999) and the daemon (port 8888).

The web site never talks to the queue tables directly when it *changes* something: submission
and cancellation go to the core's handler, manual control goes to the daemon. Failures come
back as :class:`RpcFailure` (the server answered with an error object) or
:class:`RpcUnavailable` (nobody answered), so a page can tell "your input is wrong" apart from
"the lab is down".
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Protocol

import requests


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

    def call(self, method: str, **params: Any) -> Any: ...


class RpcClient:
    """Calls ``method`` with named params on ``url``; ``timeout_s`` bounds each HTTP call (s)."""

    def __init__(self, url: str, timeout_s: float = 30.0, token: str = ""):
        self.url = url
        self.timeout_s = timeout_s
        self._token = token
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def call(self, method: str, **params: Any) -> Any:
        with self._lock:
            call_id = next(self._ids)
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": call_id}
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            reply = requests.post(self.url, json=body, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RpcUnavailable(f"{self.url} did not answer {method}: {exc}") from exc
        try:
            data = reply.json()
        except ValueError as exc:
            raise RpcUnavailable(
                f"{self.url} answered {method} with HTTP {reply.status_code}, not JSON-RPC"
            ) from exc
        if not isinstance(data, dict):
            raise RpcUnavailable(f"{self.url} answered {method} with a malformed reply")
        if "error" in data and data["error"] is not None:
            err = data["error"]
            raise RpcFailure(int(err.get("code", -32603)), str(err.get("message")), err.get("data"))
        return data.get("result")
