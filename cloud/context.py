"""Per-app resources (engine, sessions, RPC clients) and the per-request database session."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.cache import LruCache
from cloud.rpc_client import RpcCaller, RpcClient
from maosic.db.crypto import LogCipher, LogKeyError
from maosic.db.session import make_engine, session_factory
from maosic.ratelimit import FailureWindow

EXTENSION = "maosic_web"
# A spectrum payload is ~10 kB: 512 of them (the latest spectra of every watched run and the
# experiments people open) cost ~5 MB.
PAYLOAD_CACHE_ENTRIES = 512


@dataclass
class WebContext:
    engine: Engine
    sessions: sessionmaker[Session]
    core: RpcCaller
    hardware: RpcCaller
    log_key_file: Path
    login_failures: FailureWindow
    # core.describe() answer and when it was fetched (monotonic s); per app, not global.
    describe_cache: dict[str, Any] = field(default_factory=dict)
    # The daemon's reagent.stock answer and when it was fetched (cloud.stock.lab_stock).
    stock_cache: dict[str, Any] = field(default_factory=dict)
    # Plot payloads of spectra (rundata.spectrum_payload), keyed on immutable row ids.
    payloads: LruCache = field(default_factory=lambda: LruCache(PAYLOAD_CACHE_ENTRIES))


def init_context(app: Flask) -> WebContext:
    engine = make_engine(app.config["DATABASE_URL"])
    timeout = float(app.config["RPC_TIMEOUT_S"])
    ctx = WebContext(
        engine=engine,
        sessions=session_factory(engine),
        core=RpcClient.for_core(
            app.config["CORE_URL"], timeout_s=timeout, token=app.config.get("CORE_TOKEN", "")
        ),
        hardware=RpcClient(
            app.config["HARDWARE_URL"],
            timeout_s=timeout,
            token=app.config["HARDWARE_TOKEN"],
            ca_file=app.config.get("HARDWARE_CA_FILE") or "",
            client_cert=app.config.get("HARDWARE_CLIENT_CERT") or "",
        ),
        log_key_file=Path(app.config["LOG_KEY_FILE"]),
        login_failures=FailureWindow(
            int(app.config["LOGIN_IP_MAX_FAILURES"]), float(app.config["LOGIN_IP_WINDOW_S"])
        ),
    )
    app.extensions[EXTENSION] = ctx
    app.teardown_appcontext(_close_session)
    return ctx


def web() -> WebContext:
    return current_app.extensions[EXTENSION]


def db() -> Session:
    """The request's database session (opened on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = web().sessions()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def payload_cache() -> LruCache:
    return web().payloads


def log_cipher() -> LogCipher | None:
    """The audit log's cipher, or None when the key file is missing (nothing to decrypt)."""
    try:
        return LogCipher.from_file(web().log_key_file, create=False)
    except LogKeyError:
        return None
