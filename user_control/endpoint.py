"""One JSON-RPC endpoint (the hardware daemon or the core) with errors a terminal user can read.

Both servers speak JSON-RPC 2.0 over HTTP(S) with the same authentication options, so the
core is reached with the daemon's generic client (:class:`maosic.hardware.HardwareClient`);
this wrapper only turns its exceptions into the CLI's :mod:`user_control.errors`, each one line
that names the endpoint, the method and, when the server says so, the module or field.
"""

from __future__ import annotations

from typing import Any

import requests

from hardware_interface.errors import ERROR_CODES
from hardware_interface.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
)
from maosic.hardware import (
    NOT_AUTHORISED,
    HardwareClient,
    HardwareError,
    HardwareLost,
    HardwareUnreachable,
    LinkConfigError,
)
from maosic.rpc_codes import CORE_ERROR_CODES
from user_control.errors import Refused, Unreachable, UsageError

# What the JSON-RPC error codes mean: the standard ones, the daemon's (contract A) and the
# core's (contract C), each taken from where it is defined.
ERROR_NAMES: dict[int, str] = {
    PARSE_ERROR: "parse error",
    INVALID_REQUEST: "invalid request",
    METHOD_NOT_FOUND: "unknown method",
    INTERNAL_ERROR: "internal error",
    **ERROR_CODES,
    **CORE_ERROR_CODES,
    NOT_AUTHORISED: "not authorised",
}

LABELS: dict[str, str] = {"hardware": "hardware daemon", "core": "core"}

# How a refused token or TLS handshake names the settings to fix, per endpoint (see
# maosic.hardware.CORE_WORDING): this client's options and settings file keys.
WORDING: dict[str, dict[str, str]] = {
    "hardware": {
        "peer": "hardware daemon",
        "certificate": "the lab's certificate",
        "token": "--hardware-token (or --token) / hardware_token / MAOSIC_HARDWARE_TOKEN",
        "token_source": "a token in the daemon's token file",
        "ca_file": "--ca-file / ca_file / hardware_ca_file",
        "client_cert": "--client-cert / client_cert / hardware_client_cert",
    },
    "core": {
        "peer": "core",
        "certificate": "the core's certificate",
        "token": "--core-token (or --token) / core_token / MAOSIC_CORE_TOKEN",
        "token_source": "a token the core accepts",
        "ca_file": "--ca-file / ca_file / core_ca_file",
        "client_cert": "--client-cert / client_cert / core_client_cert",
    },
}


def describe_refusal(label: str, exc: HardwareError) -> str:
    """``heater.set refused by the hardware daemon (H1, limit exceeded): <message>``."""
    what = [ERROR_NAMES.get(exc.code, f"error {exc.code}")]
    data = exc.data if isinstance(exc.data, dict) else {}
    if data.get("module"):
        what.insert(0, str(data["module"]))
    if data.get("field"):
        what.append(f"field {data['field']}")
    if data.get("line") is not None:
        where = f"line {data['line']}"
        if data.get("column") is not None:
            where += f" column {data['column']}"
        what.append(where)
    return f"{exc.method} refused by the {label} ({', '.join(what)}): {exc.message}"


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.SSLError):
        return "TLS handshake failed (check --ca-file / --client-cert)"
    text = str(cause or exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Failed to resolve" in text or "Name or service not known" in text:
        return "unknown host"
    if isinstance(cause, requests.ConnectTimeout):
        return "connection timed out"
    return text.splitlines()[0][:160] if text else type(exc).__name__


class Endpoint:
    """A JSON-RPC server the CLI talks to; ``call`` raises only :mod:`user_control.errors`."""

    def __init__(
        self,
        which: str,
        url: str,
        token: str = "",
        ca_file: str = "",
        client_cert: str = "",
        timeout_s: float = 600.0,
        retries: int = 2,
        headers: dict[str, str] | None = None,
    ) -> None:
        """``timeout_s``: longest wait for one answer (s); ``retries``: extra connect attempts;
        ``headers``: credentials sent with every call (the core's, see ClientSettings)."""
        self.label = LABELS[which]
        self.url = url
        self.timeout_s = timeout_s
        self._client = HardwareClient(
            url,
            token=token,
            ca_file=ca_file,
            client_cert=client_cert,
            timeout_s=timeout_s,
            connect_timeout_s=3.0,
            retries=retries,
            backoff_s=0.2,
            wording=WORDING[which],
            headers=headers,
        )

    @property
    def lease_epoch(self) -> int | None:
        """The lab lease's epoch sent with every call (X-MAOSIC-Lease) while set."""
        return self._client.lease_epoch

    @lease_epoch.setter
    def lease_epoch(self, epoch: int | None) -> None:
        self._client.lease_epoch = epoch

    def close(self) -> None:
        self._client.close()

    def call(self, method: str, timeout_s: float | None = None, **params: Any) -> Any:
        """Call ``method`` with named ``params``; ``timeout_s`` overrides the answer timeout."""
        self._client.timeout_s = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return self._client.call(method, **params)
        except HardwareError as exc:  # a refused token too: "not authorised" and what to set
            raise Refused(describe_refusal(self.label, exc), exc.code, exc.data) from None
        except LinkConfigError as exc:
            # The TLS handshake was refused (either way) or could not be set up: nothing ran.
            raise Unreachable(str(exc)) from None
        except HardwareUnreachable as exc:
            raise Unreachable(
                f"cannot reach the {self.label} at {self.url}: {_reason(exc)}"
            ) from None
        except HardwareLost as exc:
            if isinstance(exc.__cause__, requests.exceptions.SSLError):
                raise Unreachable(
                    f"cannot reach the {self.label} at {self.url}: {_reason(exc)}"
                ) from None
            raise Unreachable(
                f"the {self.label} at {self.url} stopped answering during {method}; "
                "it may or may not have carried it out (check with `status`)"
            ) from None
        except requests.RequestException as exc:
            raise UsageError(f"bad {self.label} URL {self.url!r}: {exc}") from None
        except OSError as exc:
            # requests raises a bare OSError for an unreadable CA bundle or certificate file.
            raise UsageError(f"{self.label} TLS files: {exc}") from None
        finally:
            self._client.timeout_s = self.timeout_s
