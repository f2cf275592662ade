"""The core's own JSON-RPC error codes (contract C), beside the standard ones and the daemon's
(:mod:`hardware_interface.errors`): defined here once, read by the handler and the clients."""

from __future__ import annotations

from hardware_interface.jsonrpc import INVALID_PARAMS

UNAUTHENTICATED = -32030  # no or wrong credentials: nothing was read or stored
NOT_FOUND = -32040  # no such request (or not the caller's)

CORE_ERROR_CODES: dict[int, str] = {
    INVALID_PARAMS: "invalid parameters",
    UNAUTHENTICATED: "not authenticated",
    NOT_FOUND: "no such request",
}
