"""The daemon's application error codes (JSON-RPC 2.0 server-error range, contract A).

Every application error carries `data` = {"module": <id>, ...} naming the module concerned.

    -32001 LIMIT_EXCEEDED   a value outside the module's or the safety limits
    -32002 BUSY             the module is still executing a previous command
    -32003 OFFLINE          the module is not connected (serial line lost, no reply)
    -32004 FAULT            the module is in a latched fault (emergency stop, over-temperature)
    -32005 UNKNOWN_MODULE   no module of that id (or no such valve/reagent in this lab)
    -32006 REAGENT          empty syringe, over-fill, empty stock bottle, wrong reagent
    -32007 NOT_READY        a precondition is not met (heater not stable before reagents flow)
    -32008 LEASE_HELD       another holder has the lab's lease (data names it and when it ends)
    -32009 LEASE_LOST       the caller's lease epoch is not the current one: it was taken over
    -32000 DEVICE_ERROR     any other refusal reported by a device
"""

from __future__ import annotations

from typing import Any

from hardware_interface.jsonrpc import RpcError

DEVICE_ERROR = -32000
LIMIT_EXCEEDED = -32001
BUSY = -32002
OFFLINE = -32003
FAULT = -32004
UNKNOWN_MODULE = -32005
REAGENT = -32006
NOT_READY = -32007
LEASE_HELD = -32008
LEASE_LOST = -32009

ERROR_CODES: dict[int, str] = {
    DEVICE_ERROR: "device error",
    LIMIT_EXCEEDED: "limit exceeded",
    BUSY: "module busy",
    OFFLINE: "module not connected",
    FAULT: "module in fault",
    UNKNOWN_MODULE: "unknown module",
    REAGENT: "reagent error",
    NOT_READY: "not ready",
    LEASE_HELD: "lab leased to another holder",
    LEASE_LOST: "lease lost",
}


class AppError(RpcError):
    """An application error: `message` says what is wrong, data names the module."""

    def __init__(self, code: int, module: str, message: str, **data: Any) -> None:
        super().__init__(code, message, {"module": module, "reason": ERROR_CODES[code], **data})
        self.module = module
