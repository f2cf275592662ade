"""JSON-RPC 2.0 client of the hardware daemon (HTTP or HTTPS, bearer token or client certificate).

Retrying a hardware call is only safe when the daemon cannot have executed it: a refused or
timed-out *connection* is retried with exponential backoff, but a call that was sent and then
lost its answer (the daemon died mid-infusion) is never repeated blindly: it raises
:class:`HardwareLost` and the campaign aborts and later redoes the whole experiment.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

log = logging.getLogger(__name__)

# Application error codes the daemon documents (docs/daemon_api.md).
LIMIT_EXCEEDED = -32001
MODULE_BUSY = -32002
MODULE_OFFLINE = -32003
MODULE_FAULT = -32004
UNKNOWN_MODULE = -32005
INSUFFICIENT_REAGENT = -32006
NOT_READY = -32007


class HardwareError(RuntimeError):
    """The daemon answered with a JSON-RPC error: it refused or failed the command."""

    def __init__(self, method: str, code: int, message: str, data: Any = None):
        self.method, self.code, self.message, self.data = method, code, message, data
        module = data.get("module") if isinstance(data, dict) else None
        where = f" (module {module})" if module else ""
        super().__init__(f"{method}: {message}{where} [code {code}]")


class HardwareUnreachable(RuntimeError):
    """No connection to the daemon could be made, after all retries."""


class HardwareLost(RuntimeError):
    """A call was sent but its answer never came: the daemon may or may not have executed it."""


@dataclass
class CallRecord:
    """One call for the audit log."""

    method: str
    params: dict[str, Any]
    result: Any = None
    error_code: int | None = None
    error: str | None = None
    duration_ms: float = 0.0
    sent_at: float = field(default_factory=time.time)


class HardwareClient:
    def __init__(
        self,
        url: str,
        token: str = "",
        ca_file: str = "",
        client_cert: str = "",
        timeout_s: float = 600.0,
        connect_timeout_s: float = 3.0,
        retries: int = 4,
        backoff_s: float = 0.25,
        on_call: Callable[[CallRecord], None] | None = None,
    ):
        """``retries`` connection attempts after the first, waiting ``backoff_s`` x 2^k between."""
        self.url = url
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_call = on_call
        self._ids = itertools.count(1)
        self._http = requests.Session()
        self._http.headers["Content-Type"] = "application/json"
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"
        # Passed with every call, not set on the session: requests lets REQUESTS_CA_BUNDLE in the
        # environment override Session.verify, which would trust the system CAs, not the lab's.
        self._verify: str | bool = ca_file or True
        if client_cert:
            self._http.cert = client_cert

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, **params: Any) -> Any:
        """Call ``method`` with named params; its result, or one of this module's errors."""
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        record = CallRecord(method=method, params=params)
        started = time.perf_counter()
        try:
            reply = self._post(payload)
        except (HardwareUnreachable, HardwareLost) as exc:
            record.error = str(exc)
            self._record(record, started)
            raise
        if "error" in reply:
            err = reply["error"]
            record.error_code, record.error = err.get("code"), err.get("message")
            self._record(record, started)
            raise HardwareError(
                method, int(err.get("code", 0)), str(err.get("message")), err.get("data")
            )
        record.result = reply.get("result")
        self._record(record, started)
        return record.result

    def ping(self) -> bool:
        """True when the daemon answers ``system.status`` (one quick attempt, no retries)."""
        try:
            reply = self._http.post(
                self.url,
                json={"jsonrpc": "2.0", "id": 0, "method": "system.status", "params": {}},
                timeout=(self.connect_timeout_s, 10),
                verify=self._verify,
            )
            return reply.ok and "result" in reply.json()
        except (requests.RequestException, ValueError):
            return False

    def _record(self, record: CallRecord, started: float) -> None:
        record.duration_ms = (time.perf_counter() - started) * 1000
        if self.on_call is not None:
            self.on_call(record)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        method = payload["method"]
        for attempt in range(self.retries + 1):
            try:
                response = self._http.post(
                    self.url,
                    json=payload,
                    timeout=(self.connect_timeout_s, self.timeout_s),
                    verify=self._verify,
                )
            except (requests.ConnectionError, requests.ConnectTimeout) as exc:
                if not _never_delivered(exc):
                    raise HardwareLost(
                        f"{method}: the daemon at {self.url} went away before answering"
                    ) from exc
                if attempt == self.retries:
                    raise HardwareUnreachable(
                        f"the hardware daemon at {self.url} does not answer "
                        f"({self.retries + 1} attempts): {_reason(exc)}"
                    ) from exc
                delay = self.backoff_s * 2**attempt
                log.warning("daemon unreachable (%s), retry in %.2f s", _reason(exc), delay)
                time.sleep(delay)
                continue
            except requests.Timeout as exc:
                raise HardwareLost(f"{method}: no answer within {self.timeout_s} s") from exc
            except requests.RequestException as exc:
                # e.g. the daemon died while sending its answer (ChunkedEncodingError)
                raise HardwareLost(f"{method}: the answer from {self.url} broke off") from exc
            if response.status_code in (401, 403):
                raise HardwareError(method, -32010, f"refused by the daemon: {response.text[:200]}")
            try:
                return response.json()
            except ValueError as exc:
                raise HardwareLost(
                    f"{method}: HTTP {response.status_code} from the daemon, no JSON-RPC reply"
                ) from exc
        raise AssertionError("unreachable")


def _never_delivered(exc: Exception) -> bool:
    """True for failures before the request left (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return any(s in text for s in ("NewConnectionError", "Connection refused", "Failed to resolve"))


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:160] if text else type(exc).__name__
