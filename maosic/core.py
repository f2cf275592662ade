"""The core process: the request handler on port 9999 and the queue worker, over one database."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from hardware_interface.jsonrpc import Dispatcher
from maosic.config import Settings, ensure_core_token
from maosic.db.crypto import LogCipher
from maosic.db.session import check_schema, make_engine, session_factory
from maosic.labs import lab_description, parse_labs, register_labs
from maosic.notify import Notifier, RequestNotices, notify_settings
from maosic.rpc import make_wsgi_app, method_table
from maosic.rpc_auth import Authenticator
from maosic.service import CoreService
from maosic.worker import Worker
from maosic.worker_identity import release_worker_name, stable_worker_name
from maosic.wsgi_server import make_wsgi_server

log = logging.getLogger(__name__)


@dataclass
class Core:
    settings: Settings
    service: CoreService
    workers: list[Worker]
    url: str
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        for worker in self.workers:
            worker.request_stop()  # all at once: each finishes its current experiment
        for worker in self.workers:
            worker.stop()
            release_worker_name(worker.name)
        self._server.close()
        self._thread.join(timeout=10)


def start_core(settings: Settings, port: int | None = None, with_worker: bool = True) -> Core:
    """Start the handler (``port`` 0 picks a free one) and, unless told not to, one worker per
    lab (``settings.labs``, or the one daemon at ``settings.hardware_url``)."""
    engine = make_engine(settings.resolved_database_url)
    check_schema(engine)
    sessions = session_factory(engine)
    client_args = dict(
        token=settings.hardware_token,
        ca_file=settings.hardware_ca_file,
        client_cert=settings.hardware_client_cert,
    )
    service = CoreService(sessions, lambda url: lab_description(url, client_args))
    # The audit-log key: the workers encrypt with it, and an exported RO-Crate decrypts the
    # log for the request's owner and staff (maosic/crate_service.py).
    cipher = LogCipher.from_file(settings.resolved_log_key_file)
    dispatcher = Dispatcher(method_table(service, cipher), on_call=_log_call)
    app = make_wsgi_app(dispatcher, Authenticator(sessions, ensure_core_token(settings)))
    server = make_wsgi_server(
        app,
        host=settings.host,
        port=settings.core_port if port is None else port,
        # A few threads: handler calls are short and CPU-bound under the GIL, and more threads
        # only contend for it (same measurement as cloud/serve.py).
        threads=4,
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
    workers = []
    if with_worker:
        labs = parse_labs(settings.labs, settings.hardware_url)
        notices = RequestNotices(sessions, Notifier(notify_settings(settings)))
        for name, lab_id in register_labs(sessions, labs, client_args).items():
            worker = Worker(
                sessions,
                labs[name],
                cipher,
                # Stable across restarts: the restarted core takes its lab's lease back at once.
                name=stable_worker_name(settings.instance_path, name),
                lab_id=lab_id,
                poll_s=settings.worker_poll_s,
                rpc_timeout_s=settings.rpc_timeout_s,
                rpc_retries=settings.rpc_retries,
                heartbeat_s=settings.heartbeat_s,
                paused_retry_s=settings.paused_retry_s,
                stale_after_s=settings.stale_after_s,
                lease_ttl_s=settings.lease_ttl_s,
                on_outcome=notices,
                **client_args,
            )
            worker.start()
            workers.append(worker)
            log.info("worker for lab %r at %s", name, labs[name])
    url = f"http://{settings.host}:{bound_port}/"
    log.info("core request handler on %s", url)
    return Core(settings, service, workers, url, server, thread)


def _log_call(method: str, params: object, outcome: dict) -> None:
    if "error" in outcome:
        log.info("core rpc %s -> error %s", method, outcome["error"].get("message"))
