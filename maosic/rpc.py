"""The core's JSON-RPC 2.0 request handler (HTTP POST, port 9999).

Methods (named params; see docs/core_api.md):
``request.submit``, ``request.status``, ``request.cancel``, ``request.list``, ``queue.list``,
``core.describe``. Every call is authenticated first (:mod:`maosic.rpc_auth`); the acting user
reaches the service from the credentials, never from a parameter.

The JSON-RPC layer itself (batches, notifications, standard errors) is the daemon's generic
:class:`hardware_interface.jsonrpc.Dispatcher`, which carries no device code; reusing it keeps
one conforming implementation instead of two.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from hardware_interface.jsonrpc import INVALID_PARAMS, Dispatcher, RpcError
from maosic.analysis.reward import METRICS
from maosic.crate_service import crate_methods
from maosic.db.crypto import LogCipher
from maosic.explain_service import explanation
from maosic.optimize.registry import DEFAULT_OPTIMIZER, OPTIMIZERS
from maosic.plan_service import PlanService
from maosic.rpc_auth import Authenticator, AuthFailure, Caller
from maosic.rpc_codes import NOT_FOUND, UNAUTHENTICATED
from maosic.service import CoreService, NotFound, ServiceError

log = logging.getLogger(__name__)

# The authenticated caller of the call being dispatched (set per HTTP request, same thread).
_CALLER: ContextVar[Caller] = ContextVar("maosic_rpc_caller")
MAX_BODY = 4 * 1024 * 1024  # a configuration is a few kB; refuse anything absurd


def _translate(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map the service's errors to JSON-RPC errors that name the offending parameter."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ServiceError as exc:
            raise RpcError(INVALID_PARAMS, exc.message, {"field": exc.field, **exc.detail}) from exc
        except NotFound as exc:
            raise RpcError(NOT_FOUND, str(exc)) from exc

    return wrapper


def _as_caller(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func(caller, **params)`` as a JSON-RPC method of ``**params`` alone: the caller comes
    from the authenticated HTTP request, and a ``caller`` parameter on the wire is unknown."""

    signature = inspect.signature(func)
    wire = signature.replace(parameters=list(signature.parameters.values())[1:])

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _refuse_nul(dict(wire.bind(*args, **kwargs).arguments), "")
        return func(_CALLER.get(), *args, **kwargs)

    wrapper.__signature__ = wire  # type: ignore[attr-defined]
    return wrapper


def _refuse_nul(value: Any, where: str) -> None:
    """A NUL character in any string is refused: it truncates C strings in drivers and logs,
    and no name, formula or configuration needs one."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ServiceError(where.lstrip(".") or "params", "contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, f"{where}.{key}" if isinstance(key, str) else where)
            _refuse_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{where}[{index}]")


def method_table(
    service: CoreService, log_cipher: LogCipher | None = None
) -> dict[str, Callable[..., Any]]:
    """``log_cipher``: the audit-log key, so an exported RO-Crate can carry the log."""

    def describe() -> dict[str, Any]:
        return {
            "optimizers": list(OPTIMIZERS),
            "default_optimizer": DEFAULT_OPTIMIZER,
            "metrics": dict(METRICS),
        }

    chosen = PlanService(service)  # experiments people choose: maosic/plan_service.py

    def explained(caller: Caller, id: int) -> dict[str, Any]:
        """What drove the request's result (maosic/explain_service.py)."""
        with service.sessions() as session:
            return {"id": id, **explanation(session, service._get(session, id, caller))}

    table: dict[str, Callable[..., Any]] = {
        "request.submit": _as_caller(service.submit),
        "request.status": _as_caller(service.status),
        "request.cancel": _as_caller(service.cancel),
        "request.list": _as_caller(service.request_list),
        **{name: _as_caller(f) for name, f in crate_methods(service, log_cipher).items()},
        "request.repeat": _as_caller(chosen.repeat),
        "request.propose": _as_caller(chosen.propose),
        "request.suggest": _as_caller(chosen.suggest),
        "request.plan": _as_caller(chosen.plan),
        "request.replicates": _as_caller(chosen.replicates),
        "request.explain": _as_caller(explained),
        "queue.list": _as_caller(service.queue_list),
        "core.describe": describe,
    }
    return {name: _translate(func) for name, func in table.items()}


def make_wsgi_app(dispatcher: Dispatcher, authenticator: Authenticator) -> Callable:
    """A WSGI app answering JSON-RPC POSTs at ``/``, each from an authenticated caller."""

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(
                start_response,
                "405 Method Not Allowed",
                b'{"error": "POST a JSON-RPC 2.0 request"}',
            )
        try:
            caller = authenticator.caller(environ)
        except AuthFailure as exc:
            log.warning(
                "core rpc: refused a call from %s: %s", environ.get("REMOTE_ADDR", "?"), exc
            )
            error = {"code": UNAUTHENTICATED, "message": exc.message}
            body = json.dumps({"jsonrpc": "2.0", "error": error, "id": None}).encode()
            return _reply(start_response, "401 Unauthorized", body, www_authenticate=True)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return _reply(start_response, "413 Payload Too Large", b'{"error": "body too large"}')
        body = environ["wsgi.input"].read(length) if length else b""
        _CALLER.set(caller)
        reply = dispatcher.handle(body)
        if reply is None:
            start_response("204 No Content", [])
            return [b""]
        return _reply(start_response, "200 OK", reply)

    return app


def _reply(
    start_response: Callable, status: str, body: bytes, www_authenticate: bool = False
) -> list[bytes]:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if www_authenticate:
        headers.append(("WWW-Authenticate", 'Basic realm="maosic core", charset="UTF-8"'))
    start_response(status, headers)
    return [body]
