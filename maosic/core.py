"""The core process: the request handler on port 9999 and the queue worker, over one database."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from waitress.server import create_server

from hardware_interface.jsonrpc import Dispatcher
from maosic.config import Settings
from maosic.db.crypto import LogCipher
from maosic.db.session import check_schema, make_engine, session_factory
from maosic.rpc import make_wsgi_app, method_table
from maosic.service import CoreService
from maosic.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    service: CoreService
    worker: Worker | None
    url: str
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._server.close()
        self._thread.join(timeout=10)


def start_core(settings: Settings, port: int | None = None, with_worker: bool = True) -> Core:
    """Start the handler (``port`` 0 picks a free one) and, unless told not to, one worker."""
    engine = make_engine(settings.resolved_database_url)
    check_schema(engine)
    sessions = session_factory(engine)
    service = CoreService(sessions)
    dispatcher = Dispatcher(method_table(service), on_call=_log_call)
    server = create_server(
        make_wsgi_app(dispatcher, token=settings.core_token),
        host=settings.host,
        port=settings.core_port if port is None else port,
        threads=8,
        ident="maosic-core",
    )
    bound_port = server.socket.getsockname()[1]
    def serve() -> None:
        try:
            server.run()
        except OSError:  # stop() closed the listening socket under the select loop
            pass

    thread = threading.Thread(target=serve, name="maosic-core-rpc", daemon=True)
    thread.start()
    worker = None
    if with_worker:
        worker = Worker(
            sessions,
            settings.hardware_url,
            LogCipher.from_file(settings.resolved_log_key_file),
            poll_s=settings.worker_poll_s,
            token=settings.hardware_token,
            ca_file=settings.hardware_ca_file,
            client_cert=settings.hardware_client_cert,
            rpc_timeout_s=settings.rpc_timeout_s,
            rpc_retries=settings.rpc_retries,
            heartbeat_s=settings.heartbeat_s,
            paused_retry_s=settings.paused_retry_s,
            stale_after_s=settings.stale_after_s,
        )
        worker.start()
    url = f"http://{settings.host}:{bound_port}/"
    log.info("core request handler on %s", url)
    return Core(settings, service, worker, url, server, thread)


def _log_call(method: str, params: object, outcome: dict) -> None:
    if "error" in outcome:
        log.info("core rpc %s -> error %s", method, outcome["error"].get("message"))
