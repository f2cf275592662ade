"""JSON-RPC 2.0 client of the hardware daemon (HTTP or HTTPS, bearer token or client certificate).

Retrying a hardware call is only safe when the daemon cannot have executed it: a refused or
timed-out *connection* is retried with exponential backoff, but a call that was sent and then
lost its answer (the daemon died mid-infusion) is never repeated blindly: it raises
:class:`HardwareLost` and the campaign aborts and later redoes the whole experiment.

A link that is set up wrongly raises a :class:`LinkConfigError` naming the setting to fix, and
is never retried: the daemon refused our token (:class:`TokenRefused`, HTTP 401), we do not
trust the daemon's certificate (:class:`DaemonCertificateRejected`), the daemon refused the TLS
handshake over our client certificate (:class:`ClientCertificateRejected`), or the CA file or
client certificate cannot be loaded (:class:`TlsSetupFailed`). In every case nothing was
executed. They subclass the error a caller caught before (HardwareError for the token,
HardwareUnreachable for TLS), so code that does not know them still sees a failed call.
"""

from __future__ import annotations

import itertools
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hardware_interface.errors import FAULT, LEASE_HELD, LEASE_LOST, OFFLINE, REAGENT
from hardware_interface.lease import LEASE_HEADER
from maosic.http_link import (
    AnswerLost,
    AnswerTimeout,
    CertificateRejected,
    ClientCertificateRefused,
    HandshakeFailed,
    HttpLink,
    LinkError,
    NotDelivered,
)

log = logging.getLogger(__name__)

# The daemon's application error codes (defined once, in hardware_interface.errors) under the
# names the core's code uses.
MODULE_OFFLINE = OFFLINE
MODULE_FAULT = FAULT
INSUFFICIENT_REAGENT = REAGENT
LAB_LEASED = LEASE_HELD  # another holder drives the lab
LEASE_TAKEN = LEASE_LOST  # our lease epoch was superseded: we must stop driving
PING_TIMEOUT_S = 10.0  # longest wait for the answer to a ping (s)
NOT_AUTHORISED = -32010  # not a daemon code: the HTTP layer refused us (401/403)

# How the messages of LinkConfigError name the server and the settings behind the link: the
# core's settings by default (user_control passes its own option names, and words for the core).
CORE_WORDING: dict[str, str] = {
    "peer": "daemon",
    "certificate": "the lab's certificate",
    "token": "hardware_token / MAOSIC_HARDWARE_TOKEN",
    "token_source": "a token in the daemon's token file",
    "ca_file": "hardware_ca_file / MAOSIC_HARDWARE_CA_FILE",
    "client_cert": "hardware_client_cert / MAOSIC_HARDWARE_CLIENT_CERT",
}
# OpenSSL verify codes meaning "no trusted CA signed this chain"; 62/64: host name / IP mismatch.
_UNTRUSTED_CODES = frozenset({2, 18, 19, 20, 21})
_NAME_MISMATCH_CODES = frozenset({62, 64})


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


class LinkConfigError(RuntimeError):
    """The link to the daemon is set up wrongly (token, CA, client certificate): one side refused
    the other before anything ran, and retrying cannot help until a setting is changed."""


class TokenRefused(HardwareError, LinkConfigError):
    """The daemon answered HTTP 401: our bearer token is missing or not in its token file."""

    def __init__(self, method: str, url: str, wording: dict[str, str], said: str = ""):
        peer = wording["peer"]
        if said:  # the server says what it missed (the core does: which credentials it takes)
            message = f"the {peer} at {url} refused our credentials (HTTP 401): {said}"
        else:
            message = (
                f"the {peer} refused our token (HTTP 401): set {wording['token']} to "
                f"{wording['token_source']}; nothing was run (refused by the {peer} at {url})"
            )
        super().__init__(method, NOT_AUTHORISED, message)


class DaemonCertificateRejected(HardwareUnreachable, LinkConfigError):
    """The daemon's certificate failed verification against the CA we are configured with."""


class ClientCertificateRejected(HardwareUnreachable, LinkConfigError):
    """The daemon refused the TLS handshake over our client certificate (missing or unknown)."""


class TlsSetupFailed(HardwareUnreachable, LinkConfigError):
    """The CA file or the client certificate could not be loaded."""


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
        wording: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ):
        """``retries`` connection attempts after the first, waiting ``backoff_s`` x 2^k between.

        ``wording``: how the messages of LinkConfigError name the server and the caller's
        settings (keys of CORE_WORDING; the core's own by default). ``headers``: sent with
        every call, e.g. the core's Basic credentials or ``X-MAOSIC-User``; they win over
        ``token``.
        """
        self.url = url
        self.ca_file = ca_file
        self.client_cert = client_cert
        self.wording = {**CORE_WORDING, **(wording or {})}
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_call = on_call
        # The lab lease's epoch (hardware_interface.lease), sent with every call while set: the
        # daemon refuses moving calls whose epoch is no longer current.
        self.lease_epoch: int | None = None
        self._ids = itertools.count(1)
        self.round_trips = 0  # HTTP requests sent (a batch is one), for the overhead breakdown
        sent = {"Content-Type": "application/json"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        # Only the lab's CA when one is given (never the environment's CA bundle, which would
        # trust every public CA); the system CAs otherwise.
        context: ssl.SSLContext | None = None
        self._tls_problem: str | None = None
        if url.startswith("https:"):
            try:
                context = ssl.create_default_context(cafile=ca_file or None)
                if client_cert:
                    context.load_cert_chain(client_cert)
            except (OSError, ssl.SSLError) as exc:
                # Reported at the first call, with the reason; retrying cannot help.
                names = self.wording
                self._tls_problem = (
                    f"cannot set up TLS ({names['ca_file']} = {ca_file!r}, "
                    f"{names['client_cert']} = {client_cert!r}): {exc}"
                )
        self._link = HttpLink(url, sent, context, connect_timeout_s, timeout_s)

    def close(self) -> None:
        self._link.close()

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

    def call_batch(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        """Send ``calls`` ``(method, params)`` as one JSON-RPC batch: one HTTP round trip.

        The daemon runs a batch's calls in order and runs every one of them even when an
        earlier one fails, so only calls that may safely follow a failure belong together (see
        ``maosic.batching``). Every call is recorded for the audit log with an equal share of
        the round trip as its duration. Returns the results in order; raises
        :class:`HardwareError` for the first call that failed, after recording all of them.
        """
        if not calls:
            return []
        if len(calls) == 1:
            method, params = calls[0]
            return [self.call(method, **params)]
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": call_id, "method": method, "params": params}
            for call_id, (method, params) in zip(ids, calls, strict=True)
        ]
        records = [CallRecord(method=method, params=params) for method, params in calls]
        started = time.perf_counter()
        what = "+".join(method for method, _ in calls)
        try:
            reply = self._post(payload, what)
        except (HardwareUnreachable, HardwareLost) as exc:
            for record in records:
                record.error = str(exc)
            self._record_all(records, started)
            raise
        by_id = {r.get("id"): r for r in reply} if isinstance(reply, list) else {}
        failure: HardwareError | None = None
        for call_id, record in zip(ids, records, strict=True):
            answer = by_id.get(call_id)
            if answer is None:
                # A batch answered with one error object (e.g. the daemon refused the batch).
                answer = reply if isinstance(reply, dict) else {}
                answer = {"error": answer.get("error") or {"code": -32603, "message": "no reply"}}
            if "error" in answer:
                err = answer["error"]
                record.error_code, record.error = err.get("code"), err.get("message")
                if failure is None:
                    failure = HardwareError(
                        record.method,
                        int(err.get("code", 0)),
                        str(err.get("message")),
                        err.get("data"),
                    )
            else:
                record.result = answer.get("result")
        self._record_all(records, started)
        if failure is not None:
            raise failure
        return [record.result for record in records]

    def ping(self) -> bool:
        """True when the daemon answers ``system.status`` (one quick attempt, no retries)."""
        if self._tls_problem is not None:
            return False
        body = b'{"jsonrpc":"2.0","id":0,"method":"system.status","params":{}}'
        self._link.timeout_s = min(self.timeout_s, PING_TIMEOUT_S)
        try:
            reply = self._link.post(body)
            answer = json.loads(reply.body)
        except (LinkError, ValueError):
            return False
        return reply.status == 200 and isinstance(answer, dict) and "result" in answer

    def _lease_header(self) -> dict[str, str] | None:
        return None if self.lease_epoch is None else {LEASE_HEADER: str(self.lease_epoch)}

    def _record(self, record: CallRecord, started: float) -> None:
        record.duration_ms = (time.perf_counter() - started) * 1000
        if self.on_call is not None:
            self.on_call(record)

    def _record_all(self, records: list[CallRecord], started: float) -> None:
        share = (time.perf_counter() - started) * 1000 / len(records)
        for record in records:
            record.duration_ms = share
            if self.on_call is not None:
                self.on_call(record)

    def _post(self, payload: dict[str, Any] | list[dict[str, Any]], method: str = "") -> Any:
        """POST one JSON-RPC request or batch; ``method`` names it in errors."""
        method = method or payload["method"]
        if self._tls_problem is not None:
            peer = self.wording["peer"]
            raise TlsSetupFailed(f"the {peer} at {self.url}: {self._tls_problem}")
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._link.timeout_s = self.timeout_s  # callers may change it between calls
        for attempt in range(self.retries + 1):
            self.round_trips += 1
            try:
                reply = self._link.post(body, self._lease_header())
            except NotDelivered as exc:
                if attempt == self.retries:
                    raise HardwareUnreachable(
                        f"the hardware daemon at {self.url} does not answer "
                        f"({self.retries + 1} attempts): {_reason(exc)}"
                    ) from exc
                delay = self.backoff_s * 2**attempt
                log.warning("daemon unreachable (%s), retry in %.2f s", _reason(exc), delay)
                time.sleep(delay)
                continue
            except CertificateRejected as exc:
                raise DaemonCertificateRejected(self._untrusted_daemon(exc)) from exc
            except ClientCertificateRefused as exc:
                raise ClientCertificateRejected(self._refused_client_cert(exc)) from exc
            except HandshakeFailed as exc:
                # A certificate problem does not go away by retrying; nothing was sent.
                raise HardwareUnreachable(
                    f"the hardware daemon at {self.url} cannot be reached safely: {exc}"
                ) from exc
            except AnswerTimeout as exc:
                raise HardwareLost(f"{method}: no answer within {self.timeout_s} s") from exc
            except AnswerLost as exc:
                if exc.began:
                    # e.g. the daemon died while sending its answer
                    raise HardwareLost(f"{method}: the answer from {self.url} broke off") from exc
                raise HardwareLost(
                    f"{method}: the daemon at {self.url} went away before answering"
                ) from exc
            if reply.status == 401:
                raise TokenRefused(method, self.url, self.wording, _error_message(reply.body))
            if reply.status == 403:
                text = reply.body.decode("utf-8", "replace")[:200]
                raise HardwareError(method, NOT_AUTHORISED, f"refused by the daemon: {text}")
            try:
                return json.loads(reply.body)
            except ValueError as exc:
                raise HardwareLost(
                    f"{method}: HTTP {reply.status} from the daemon, no JSON-RPC reply"
                ) from exc
        raise AssertionError("unreachable")

    def _untrusted_daemon(self, exc: CertificateRejected) -> str:
        name, cert = self.wording["ca_file"], self.wording["certificate"]
        if self.ca_file:
            ca = f"{name} = {self.ca_file!r}"
        else:
            ca = f"{name} not set, so only the system's CAs are trusted"
        if exc.verify_code in _UNTRUSTED_CODES:
            what = f"{cert} is not signed by the configured CA ({ca})"
        elif exc.verify_code in _NAME_MISMATCH_CODES:
            what = (
                f"{cert} is not valid for the host in {self.url} (use the host name the "
                "certificate was made for)"
            )
        else:
            what = f"{cert} failed verification ({ca})"
        peer = self.wording["peer"]
        return f"{what}: {exc.verify_message}; nothing was sent to the {peer} at {self.url}"

    def _refused_client_cert(self, exc: ClientCertificateRefused) -> str:
        name = self.wording["client_cert"]
        if not self.client_cert:
            why = (
                f"it requires a client certificate (set {name} to a PEM holding a certificate "
                "and key signed by the lab's CA)"
            )
        else:
            why = (
                f"it does not accept our client certificate ({name} = {self.client_cert!r}, "
                f"TLS alert {exc.alert}): use one signed by the lab's CA"
            )
        peer = self.wording["peer"]
        return f"the {peer} at {self.url} refused the TLS handshake: {why}; nothing was sent"


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:160] if text else type(exc).__name__


def _error_message(body: bytes) -> str:
    """The message of a JSON-RPC error in an HTTP error reply, if there is one (cut short)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else None
    return str(message)[:300] if message else ""
