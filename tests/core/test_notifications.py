"""A request's owner is told when it finishes, fails or pauses: e-mail through a real SMTP
server (aiosmtpd) and a webhook on a real HTTP server (issue 20, item 16)."""

from __future__ import annotations

import json
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from maosic.campaign import Campaign
from maosic.db.models import RequestStatus, Role, User
from maosic.notify import (
    Notifier,
    NotifySettings,
    RequestNotices,
    WebhookRefused,
    check_webhook_url,
)
from maosic.rpc_auth import Caller
from maosic.service import CoreService
from tests.core.campaign_helpers import config_with, start_sim_daemon, worker
from tests.faults.processes import free_port


@pytest.fixture
def sim_daemon():
    handle = start_sim_daemon()
    yield handle
    handle.stop()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    box = _Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, box
    controller.stop()


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def _owner(sessions, email: str | None, webhook_url: str | None, notify_email=True) -> Caller:
    with sessions() as session:
        user = User(
            username="chemist",
            email=email,
            password_hash="x",
            role=Role.USER,
            notify_email=notify_email,
            webhook_url=webhook_url,
        )
        session.add(user)
        session.commit()
        return Caller(user.id, user.username, False, "password")


def _notices(sessions, smtp_port: int) -> RequestNotices:
    settings = NotifySettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="lab@example.org",
        site_url="https://lab.example.org/",
        webhook_allow_private=True,  # the test's webhook listens on loopback
    )
    return RequestNotices(sessions, Notifier(settings))


def _run(sessions, daemon, tmp_path, notices: RequestNotices, budget: int = 2) -> None:
    w = worker(sessions, daemon, tmp_path, on_outcome=notices)
    assert w.run_once()
    for thread in notices.threads:
        thread.join(15)


def test_a_finished_request_is_mailed_and_posted_to_its_owner(
    sessions, sim_daemon, tmp_path, smtp, webhook
):
    controller, box = smtp
    url, received = webhook
    caller = _owner(sessions, "chemist@example.org", url)
    config = config_with(optimizer="random")
    rid = CoreService(sessions).submit(caller, config=config, budget=2, seed=1)["id"]
    _run(sessions, sim_daemon, tmp_path, _notices(sessions, controller.port))

    assert len(box.messages) == 1
    to, message = box.messages[0]
    assert to == ["chemist@example.org"] and message["From"] == "lab@example.org"
    assert message["Subject"] == f"MAOSIC request {rid} ({config['name']}): done"
    body = message.get_payload(decode=True).decode()
    assert "Experiments: 2 of 2" in body and "budget of 2 experiments used" in body
    assert f"https://lab.example.org/requests/{rid}" in body
    assert len(received) == 1
    hook = received[0]
    assert hook["request_id"] == rid and hook["status"] == "done" and hook["owner"] == "chemist"
    assert hook["n_done"] == 2 and hook["budget"] == 2 and hook["best_reward"] is not None


def test_a_pause_is_told_once_and_a_failure_again(sessions, sim_daemon, tmp_path, smtp, webhook):
    controller, box = smtp
    url, received = webhook
    caller = _owner(sessions, "chemist@example.org", url, notify_email=False)
    rid = CoreService(sessions).submit(
        caller, config=config_with(optimizer="random"), budget=3, seed=1
    )["id"]
    notices = _notices(sessions, controller.port)
    notices(rid, RequestStatus.RUNNING)  # not news
    for _ in range(3):  # a paused request is retried every few seconds: told once
        notices(rid, RequestStatus.PAUSED)
    for thread in notices.threads:
        thread.join(15)
    assert [h["status"] for h in received] == ["queued"]  # the state it is in when told
    assert box.messages == []  # e-mail turned off by the owner

    def crash(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkey = pytest.MonkeyPatch()
    monkey.setattr(Campaign, "_execute", crash)
    monkey.setattr(Campaign, "_overlapped", crash)  # the pipelined loop's step
    try:
        _run(sessions, sim_daemon, tmp_path, notices)
    finally:
        monkey.undo()
    assert [h["status"] for h in received] == ["queued", "failed"]
    assert "internal error in the core" in received[-1]["reason"]


def test_a_dead_smtp_server_or_webhook_does_not_stop_the_lab(sessions, sim_daemon, tmp_path):
    caller = _owner(sessions, "chemist@example.org", f"http://127.0.0.1:{free_port()}/gone")
    rid = CoreService(sessions).submit(
        caller, config=config_with(optimizer="random"), budget=1, seed=1
    )["id"]
    notices = _notices(sessions, free_port())  # nothing listens there
    _run(sessions, sim_daemon, tmp_path, notices)
    status = CoreService(sessions).status(caller, rid)
    assert status["status"] == "done" and status["n_done"] == 1


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://example.org/", "http:// or https://"),
        ("http://user:pw@example.org/", "user name or password"),
        ("http://127.0.0.1:9999/", "private or local network"),
        ("http://localhost/", "private or local network"),
        ("http://10.1.2.3/hook", "private or local network"),
        ("http://[::1]/hook", "private or local network"),
        ("http://169.254.169.254/latest/meta-data", "private or local network"),
        ("http://" + "a" * 600 + ".org/", "at most 500"),
    ],
)
def test_webhook_urls_to_the_labs_own_network_are_refused(url: str, words: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        check_webhook_url(url)
    assert words in str(caught.value)
