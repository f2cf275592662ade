"""The core's JSON-RPC 2.0 request handler (HTTP POST, port 9999).

Methods (named params; see docs/core_api.md):
``request.submit``, ``request.status``, ``request.cancel``, ``request.list``, ``queue.list``,
``core.describe``. The JSON-RPC layer itself (batches, notifications, standard errors) is the
daemon's generic :class:`hardware_interface.jsonrpc.Dispatcher`, which carries no device code;
reusing it keeps one conforming implementation instead of two.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from hardware_interface.jsonrpc import Dispatcher, RpcError
from maosic.analysis.reward import METRICS
from maosic.optimize.registry import DEFAULT_OPTIMIZER, OPTIMIZERS
from maosic.service import CoreService, NotFound, ServiceError

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
NOT_FOUND = -32040
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


def method_table(service: CoreService) -> dict[str, Callable[..., Any]]:
    def describe() -> dict[str, Any]:
        return {
            "optimizers": list(OPTIMIZERS),
            "default_optimizer": DEFAULT_OPTIMIZER,
            "metrics": dict(METRICS),
        }

    table: dict[str, Callable[..., Any]] = {
        "request.submit": service.submit,
        "request.status": service.status,
        "request.cancel": service.cancel,
        "request.list": service.request_list,
        "queue.list": service.queue_list,
        "core.describe": describe,
    }
    return {name: _translate(func) for name, func in table.items()}


def make_wsgi_app(dispatcher: Dispatcher, token: str = "") -> Callable:
    """A WSGI app answering JSON-RPC POSTs at ``/``; with ``token``, callers must send it."""

    def app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(
                start_response,
                "405 Method Not Allowed",
                b'{"error": "POST a JSON-RPC 2.0 request"}',
            )
        if token and environ.get("HTTP_AUTHORIZATION", "") != f"Bearer {token}":
            return _reply(start_response, "401 Unauthorized", b'{"error": "bearer token required"}')
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return _reply(start_response, "413 Payload Too Large", b'{"error": "body too large"}')
        body = environ["wsgi.input"].read(length) if length else b""
        reply = dispatcher.handle(body)
        if reply is None:
            start_response("204 No Content", [])
            return [b""]
        return _reply(start_response, "200 OK", reply)

    return app


def _reply(start_response: Callable, status: str, body: bytes) -> list[bytes]:
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
