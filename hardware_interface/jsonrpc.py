"""A generic JSON-RPC 2.0 dispatcher (https://www.jsonrpc.org/specification).

Free of device code on purpose: the core reuses it for its own request handler on port 9999.

    dispatcher = Dispatcher({"add": add, "system.status": status})
    reply: bytes | None = dispatcher.handle(raw_request_bytes)

`handle` returns None when nothing must be sent back (a notification, or a batch made only of
notifications). It never raises: every failure becomes a JSON-RPC error object.

Conformance notes, where the `json-rpc` package falls short of the specification:
- a batch holding an invalid element answers with an array in which that element gets its own
  -32600 error, while the valid elements are executed normally;
- an empty batch `[]` is one -32600 error (not an array);
- a notification never produces a response, even when its method is unknown or fails.

Numbers: JSON allows any number, Python's json reads `1e400` as infinity and a 5000-digit integer
not at all. A body holding a non-finite number (`1e400`, `NaN`, `Infinity`) or an integer outside
64-bit signed range is refused as a parse error (-32700) whose `data` says which number is out
of range, before any handler sees it; error texts quote at most ECHO_LIMIT characters of the
caller's input.

Parameter checking: arguments are bound with `inspect.Signature.bind` (by name or by position)
and, when the handler annotates a parameter with a plain JSON type (`float`, `int`, `bool`, `str`,
`list`, `dict`, optionally `| None`), the value is type-checked, so a wrong call is reported as
-32602 naming the parameter instead of failing deep inside the handler.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

_STANDARD_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid Request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
}

# Integers a request may carry: 64-bit signed, what every handler, driver and database column can
# hold. Floats must be finite doubles.
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
ECHO_LIMIT = 80  # characters of a caller's value quoted back in an error's data

# A reply id of None is serialised as JSON null, which the spec requires when the request id
# could not be determined; this sentinel marks "no id member at all" (a notification).
_NO_ID = object()


class RpcError(Exception):
    """An error a method handler raises to answer with a specific JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(frozen=True)
class _Method:
    func: Callable[..., Any]
    signature: inspect.Signature
    hints: dict[str, Any]


def _json_type_check(value: Any, hint: Any) -> bool:
    """True when `value` (decoded JSON) fits the simple annotation `hint`; unknown hints pass."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_json_type_check(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    base = origin if origin is not None else hint
    if base is bool:
        return isinstance(value, bool)
    if base is float:
        # JSON has one number type: an integer literal is a valid float; a boolean is not.
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is str:
        return isinstance(value, str)
    if base in (list, tuple):
        return isinstance(value, list)
    if base is dict:
        return isinstance(value, dict)
    return True


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    names = {bool: "boolean", float: "number", int: "integer", str: "string", type(None): "null"}
    base = typing.get_origin(hint) or hint
    return names.get(base, {list: "array", tuple: "array", dict: "object"}.get(base, str(hint)))


class Dispatcher:
    """Routes JSON-RPC 2.0 requests to the callables of an explicit method table.

    `methods` maps the wire method name to a callable; names starting with "rpc." are reserved
    by the specification and refused. `on_call(method, params, outcome)` is an optional hook
    (e.g. for logging), called after each executed call with the result or error object.
    """

    def __init__(
        self,
        methods: Mapping[str, Callable[..., Any]],
        on_call: Callable[[str, Any, dict[str, Any]], None] | None = None,
    ) -> None:
        self._methods: dict[str, _Method] = {}
        for name, func in methods.items():
            if name.startswith("rpc."):
                raise ValueError(f"method name {name!r}: names beginning with 'rpc.' are reserved")
            try:
                hints = typing.get_type_hints(func)
            except Exception:  # noqa: BLE001 - unresolved annotations just disable type checks
                hints = {}
            self._methods[name] = _Method(func, inspect.signature(func), hints)
        self._on_call = on_call

    @property
    def method_names(self) -> list[str]:
        return sorted(self._methods)

    def handle(self, raw: bytes | str) -> bytes | None:
        """Answer one HTTP body: bytes of the JSON response, or None when none is due."""
        try:
            payload = json.loads(
                raw,
                parse_constant=_refuse_constant,
                parse_int=_parse_int,
                parse_float=_parse_float,
            )
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            return _dump(_error_response(None, PARSE_ERROR, data=str(exc)[:200]))
        reply = self.handle_json(payload)
        if reply is None:
            return None
        try:
            return _dump(reply)
        except (TypeError, ValueError) as exc:
            # A handler returned something JSON cannot carry (NaN, an object): say so clearly.
            log.exception("reply not serialisable")
            req_id = reply.get("id") if isinstance(reply, dict) else None
            return _dump(_error_response(req_id, INTERNAL_ERROR, data=f"reply not JSON: {exc}"))

    def handle_json(self, payload: Any) -> Any:
        """Like `handle` but on decoded JSON; returns a JSON-able object or None."""
        if isinstance(payload, list):
            if not payload:
                return _error_response(None, INVALID_REQUEST, data="empty batch")
            replies = [r for r in (self._handle_one(item) for item in payload) if r is not None]
            return replies or None
        return self._handle_one(payload)

    def _handle_one(self, request: Any) -> dict[str, Any] | None:
        problem = _request_problem(request)
        if problem is not None:
            req_id = request.get("id") if isinstance(request, dict) else None
            if not isinstance(req_id, str | int | float) or isinstance(req_id, bool):
                req_id = None
            return _error_response(req_id, INVALID_REQUEST, data=problem)
        req_id = request.get("id", _NO_ID)
        method_name: str = request["method"]
        params = request.get("params")
        outcome = self._call(method_name, params)
        if self._on_call is not None:
            try:
                self._on_call(method_name, params, outcome)
            except Exception:  # noqa: BLE001 - a logging hook must never break the reply
                log.exception("on_call hook failed")
        if req_id is _NO_ID:
            return None
        return {"jsonrpc": "2.0", **outcome, "id": req_id}

    def _call(self, name: str, params: Any) -> dict[str, Any]:
        method = self._methods.get(name)
        if method is None:
            error = RpcError(METHOD_NOT_FOUND, "Method not found", _cut(name))
            return {"error": error.to_json()}
        try:
            if params is None:
                bound = method.signature.bind()
            elif isinstance(params, list):
                bound = method.signature.bind(*params)
            else:
                bound = method.signature.bind(**params)
        except TypeError as exc:
            detail = f"{name}: {_cut(str(exc), 2 * ECHO_LIMIT)}"
            return {"error": RpcError(INVALID_PARAMS, "Invalid params", detail).to_json()}
        for pname, value in bound.arguments.items():
            hint = method.hints.get(pname)
            if hint is None:
                continue
            kind = method.signature.parameters[pname].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                values = list(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                values = list(value.values())
            else:
                values = [value]
            for item in values:
                if not _json_type_check(item, hint):
                    detail = (
                        f"{name}: param '{pname}' must be {_type_name(hint)}, got {_brief(item)}"
                    )
                    return {"error": RpcError(INVALID_PARAMS, "Invalid params", detail).to_json()}
        try:
            return {"result": method.func(*bound.args, **bound.kwargs)}
        except RpcError as exc:
            return {"error": exc.to_json()}
        except Exception as exc:  # noqa: BLE001 - any handler bug becomes -32603, logged
            log.exception("method %s failed", name)
            detail = f"{name}: {type(exc).__name__}: {_cut(str(exc), 2 * ECHO_LIMIT)}"
            return {"error": RpcError(INTERNAL_ERROR, "Internal error", detail).to_json()}


def _brief(value: Any, limit: int = ECHO_LIMIT) -> str:
    """repr() of a caller's value for an error text, cut to `limit` characters."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond sys.get_int_max_str_digits(): never decoded here
        text = "<a very large integer>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cut(text: str, limit: int = ECHO_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_int(literal: str) -> int:
    # int() itself refuses more than 4300 digits with an obscure message; 20 characters hold any
    # 64-bit integer with its sign, so the length test also spares int() a long string.
    if len(literal) <= 20:
        value = int(literal)
        if INT_MIN <= value <= INT_MAX:
            return value
    raise ValueError(
        f"integer {_cut(literal, 40)} is out of range: integers must fit in 64 bits "
        f"[{INT_MIN}, {INT_MAX}]"
    )


def _parse_float(literal: str) -> float:
    value = float(literal)
    if math.isfinite(value):
        return value
    raise ValueError(
        f"number {_cut(literal, 40)} is out of range: numbers must be finite "
        "(at most about 1.8e308 in magnitude)"
    )


def _refuse_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity, which JSON does not: a NaN would pass every range check
    # written as `not low <= x <= high` only by luck, and cannot even be echoed back in an error.
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _request_problem(request: Any) -> str | None:
    """Why `request` is not a valid JSON-RPC 2.0 Request object, or None when it is."""
    if not isinstance(request, dict):
        return "request must be an object"
    if request.get("jsonrpc") != "2.0":
        return "member 'jsonrpc' must be exactly \"2.0\""
    if not isinstance(request.get("method"), str):
        return "member 'method' must be a string"
    if "params" in request and not isinstance(request["params"], list | dict):
        return "member 'params' must be an array or an object"
    if "id" in request:
        req_id = request["id"]
        if req_id is not None and (
            isinstance(req_id, bool) or not isinstance(req_id, str | int | float)
        ):
            return "member 'id' must be a string, a number or null"
    return None


def _error_response(req_id: Any, code: int, data: Any = None) -> dict[str, Any]:
    error = RpcError(code, _STANDARD_MESSAGES[code], data).to_json()
    return {"jsonrpc": "2.0", "error": error, "id": req_id}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_json_default).encode()


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays come back from the simulated optics; JSON has no such types.
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
