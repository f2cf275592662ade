"""Sharing a request read-only with a colleague (issue 20, item 17): they see every run route,
cannot cancel or share it, and lose the view when the owner removes the share."""

from __future__ import annotations

import html

import pytest

from tests.cloud.conftest import login
from tests.cloud.helpers import add_run
from tests.cloud.test_runs import RUN_ROUTES


@pytest.fixture
def demo_run(web_sessions, log_key) -> int:
    return add_run(web_sessions, "demo", n_experiments=3, log_key=log_key)


def _colleague(app, name: str = "colleague"):
    client = app.test_client()
    reply = client.post(
        "/register", data={"username": name, "password": "0123456789", "confirm": "0123456789"}
    )
    assert reply.status_code == 302
    return client


def test_shared_read_only_then_unshared(app, client, demo_run, fake_core):
    colleague = _colleague(app)
    for route in RUN_ROUTES:
        assert colleague.get(route.format(id=demo_run)).status_code == 404, route

    login(client, "demo")
    page = client.get(f"/requests/{demo_run}").data.decode()
    assert 'id="sharing"' in page and 'id="cancel"' in page
    reply = client.post(
        f"/requests/{demo_run}/sharing", data={"action": "add", "username": "colleague"}
    )
    assert reply.status_code == 302
    listing = client.get(f"/requests/{demo_run}/sharing").data.decode()
    assert "colleague" in listing and 'id="no-shares"' not in listing

    for route in RUN_ROUTES:
        assert colleague.get(route.format(id=demo_run)).status_code == 200, route
    page = colleague.get(f"/requests/{demo_run}").data.decode()
    assert 'id="shared-note"' in page and "shared with you by demo" in page
    assert 'id="cancel"' not in page and 'id="sharing"' not in page
    assert f"/requests/{demo_run}" in colleague.get("/").data.decode()  # in their list
    # read-only: no cancel (never reaches the core), no sharing further
    assert colleague.post(f"/requests/{demo_run}/cancel").status_code == 403
    assert fake_core.calls == []
    assert colleague.get(f"/requests/{demo_run}/sharing").status_code == 403
    reply = colleague.post(
        f"/requests/{demo_run}/sharing", data={"action": "add", "username": "mallory"}
    )
    assert reply.status_code == 403

    share_id = listing.split('name="share" value="')[1].split('"')[0]
    reply = client.post(
        f"/requests/{demo_run}/sharing", data={"action": "remove", "share": share_id}
    )
    assert reply.status_code == 302
    for route in RUN_ROUTES:
        assert colleague.get(route.format(id=demo_run)).status_code == 404, route


@pytest.mark.parametrize(
    ("username", "words"),
    [
        ("nobody-here", "there is no active account named 'nobody-here'"),
        ("demo", "the owner sees the request already"),
        ("", "give a colleague's user name"),
    ],
)
def test_bad_shares_are_refused_naming_why(client, demo_run, username, words):
    login(client, "demo")
    reply = client.post(
        f"/requests/{demo_run}/sharing", data={"action": "add", "username": username}
    )
    assert reply.status_code == 400 and words in html.unescape(reply.data.decode())


def test_a_stranger_cannot_see_or_manage_the_sharing_page(app, demo_run):
    stranger = _colleague(app, "mallory")
    assert stranger.get(f"/requests/{demo_run}/sharing").status_code == 404
    reply = stranger.post(
        f"/requests/{demo_run}/sharing", data={"action": "add", "username": "mallory"}
    )
    assert reply.status_code == 404
