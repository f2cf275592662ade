"""The web site's JSON-RPC client of the core (port 9999) and the daemon (port 8888).

The web site never talks to the queue tables directly when it *changes* something: submission
and cancellation go to the core's handler, manual control goes to the daemon. Both links are
:class:`maosic.hardware.HardwareClient`, the client the core and the terminal use, so the web
site speaks TLS, client certificates, bearer tokens and the lab lease exactly as they do and
names the setting to fix when a link is set up wrongly.

Failures come back as :class:`RpcFailure` (the server answered with an error object, including
a refused token) or :class:`RpcUnavailable` (nobody answered usefully: refused connection,
timeout, a TLS handshake one side refused, a reply that is not JSON-RPC), so a page can tell
"your input is wrong" apart from "the lab is down".
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from maosic.hardware import (
    CORE_WORDING,
    HardwareClient,
    HardwareError,
    HardwareLost,
    HardwareUnreachable,
    LinkConfigError,
)
from maosic.http_link import IDLE_REOPEN_S, LinkError

CONNECT_TIMEOUT_S = 3.0  # TCP connect + TLS handshake (s): a page must not hang on a dead host
# One more connection attempt after a refused one: safe (nothing can have been delivered) and
# enough to ride over a server restarting; more would keep a page waiting seconds.
RETRIES = 1
BACKOFF_S = 0.1

# How a refused token or TLS handshake names the web site's settings (maosic.hardware wording).
DAEMON_WORDING: dict[str, str] = dict(CORE_WORDING)
CORE_LINK_WORDING: dict[str, str] = {
    "peer": "core",
    "certificate": "the core's certificate",
    "token": "core_token / MAOSIC_CORE_TOKEN (or instance/core.token)",
    "token_source": "the core's installation token",
    "ca_file": "the system's CA store (the web site has no CA setting for the core)",
    "client_cert": "no client certificate (the web site sends none to the core)",
}


class RpcFailure(RuntimeError):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{message} (code {code})")
        self.code, self.message, self.data = code, message, data


class RpcUnavailable(RuntimeError):
    """No usable answer: connection refused, timeout, TLS refused, or not JSON-RPC."""


class RpcCaller(Protocol):
    """What the blueprints need from a client; tests may pass any object with ``call``."""

    url: str

    def call(
        self,
        method: str,
        *,
        as_user: str | None = None,
        lease_epoch: int | None = None,
        **params: Any,
    ) -> Any: ...


@dataclass
class _ThreadLink:
    """One thread's client: a HardwareClient holds one connection and is not thread-safe."""

    client: HardwareClient
    last_used: float = field(default_factory=time.monotonic)


class RpcClient:
    """Calls ``method`` with named params on ``url``; ``timeout_s`` bounds each answer (s).

    ``token``: bearer token; ``ca_file``/``client_cert``: the CA that signed the server's
    certificate and our client certificate + key (mutual TLS), for an ``https://`` URL;
    ``wording``: how errors name the server and the settings (see maosic.hardware).
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 30.0,
        token: str = "",
        ca_file: str = "",
        client_cert: str = "",
        wording: dict[str, str] | None = None,
    ):
        self.url = url
        self.timeout_s = timeout_s
        self._token = token
        self._ca_file = ca_file
        self._client_cert = client_cert
        self._wording = dict(wording or DAEMON_WORDING)
        self.peer = self._wording["peer"]
        self._local = threading.local()

    @classmethod
    def for_core(cls, url: str, timeout_s: float, token: str) -> RpcClient:
        return cls(url, timeout_s=timeout_s, token=token, wording=CORE_LINK_WORDING)

    def _new_client(self, headers: dict[str, str] | None = None) -> HardwareClient:
        return HardwareClient(
            self.url,
            token=self._token,
            ca_file=self._ca_file,
            client_cert=self._client_cert,
            timeout_s=self.timeout_s,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            retries=RETRIES,
            backoff_s=BACKOFF_S,
            wording=self._wording,
            headers=headers,
        )

    def _thread_client(self) -> HardwareClient:
        link: _ThreadLink | None = getattr(self._local, "link", None)
        if link is None:
            link = self._local.link = _ThreadLink(self._new_client())
        elif time.monotonic() - link.last_used > IDLE_REOPEN_S:
            link.client.close()  # reconnects on the next call
        link.last_used = time.monotonic()
        return link.client

    def call(
        self,
        method: str,
        *,
        as_user: str | None = None,
        lease_epoch: int | None = None,
        **params: Any,
    ) -> Any:
        """``as_user``: the account the call acts for (the logged-in user), sent with the
        installation's token; the core trusts that pairing only (see maosic.rpc_auth).
        ``lease_epoch``: the lab lease this call is made under (the daemon's X-MAOSIC-Lease)."""
        if as_user is not None:
            # Calls acting for a user (submit, cancel) are rare: a client of their own, with the
            # user's header, keeps the per-thread link free of per-user state.
            client = self._new_client({"X-MAOSIC-User": as_user})
            try:
                return self._call(client, method, lease_epoch, params)
            finally:
                client.close()
        return self._call(self._thread_client(), method, lease_epoch, params)

    def _call(
        self,
        client: HardwareClient,
        method: str,
        lease_epoch: int | None,
        params: dict[str, Any],
    ) -> Any:
        client.lease_epoch = lease_epoch
        try:
            return client.call(method, **params)
        except HardwareError as exc:  # includes a refused token: the server answered
            raise RpcFailure(exc.code, exc.message, exc.data) from exc
        except LinkConfigError as exc:
            # A TLS handshake one side refused, or TLS files that cannot be loaded: the message
            # names the setting to fix; nothing was sent.
            raise RpcUnavailable(str(exc)) from exc
        except (HardwareUnreachable, HardwareLost) as exc:
            raise RpcUnavailable(
                f"the {self.peer} at {self.url} did not answer {method}: {_reason(exc)}"
            ) from exc
        finally:
            client.lease_epoch = None


def _reason(exc: BaseException) -> str:
    """Why a call got no answer, in words that fit either server (the core or the daemon)."""
    cause = exc.__cause__
    if isinstance(cause, LinkError):
        return str(cause).splitlines()[0][:200]
    status = re.search(r"HTTP (\d{3})", str(exc))
    if isinstance(cause, ValueError) and status:
        return f"HTTP {status.group(1)}, not JSON-RPC"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
