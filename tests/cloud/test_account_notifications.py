"""The account page where a user sets how they hear about their requests (issue 20, item 16)."""

from __future__ import annotations

from sqlalchemy import select

from maosic.db.models import User
from tests.cloud.conftest import login


def _user(web_sessions) -> User:
    with web_sessions() as session:
        return session.scalars(select(User).where(User.username == "demo")).one()


def test_settings_are_saved_and_a_private_webhook_refused(client, web_sessions):
    login(client, "demo")
    page = client.get("/account/notifications").data.decode()
    assert 'id="smtp-off"' in page  # no SMTP server configured: the page says so
    reply = client.post(
        "/account/notifications",
        data={"email": "demo@example.org", "notify_email": "y", "webhook_url": "http://10.0.0.5/x"},
    )
    assert reply.status_code == 200 and "private or local network" in reply.data.decode()
    assert _user(web_sessions).webhook_url is None  # nothing saved
    reply = client.post(
        "/account/notifications", data={"email": "not-an-address", "webhook_url": ""}
    )
    assert "not an e-mail address" in reply.data.decode()
    reply = client.post("/account/notifications", data={"email": "demo@example.org"})
    assert reply.status_code == 302
    user = _user(web_sessions)
    assert user.email == "demo@example.org" and user.notify_email is False  # box left unticked
    assert user.webhook_url is None


def test_a_public_webhook_is_kept(app, client, web_sessions):
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True  # a closed network's setting: loopback allowed
    login(client, "demo")
    reply = client.post(
        "/account/notifications",
        data={"notify_email": "y", "webhook_url": "http://127.0.0.1:8080/hook"},
    )
    assert reply.status_code == 302
    user = _user(web_sessions)
    assert user.webhook_url == "http://127.0.0.1:8080/hook" and user.notify_email is True
    page = client.get("/account/notifications").data.decode()
    assert 'value="http://127.0.0.1:8080/hook"' in page
