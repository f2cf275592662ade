"""The core's request handler authenticates every call (issue 17, doors 1 and 2).

Started as a user starts it (no token configured), the core makes an installation token in the
instance folder; the web site on the same installation reads it and acts for the logged-in user.
A caller without credentials can neither read, submit nor cancel; a user's own password reaches
only that user's requests; a configuration is data, never a file name on the core's machine.
"""

from __future__ import annotations

import base64
import io
import stat

import pytest
import requests
from sqlalchemy import func, select

from cloud import create_app
from maosic.config import load_settings
from maosic.core import start_core
from maosic.db.models import Reaction, Request, User
from maosic.db.seed import seed as seed_db
from tests.core.rpc_helpers import cspbbr3_config

CALLS = {
    "request.submit": {"config": cspbbr3_config(), "budget": 3},
    "request.status": {"id": 1},
    "request.cancel": {"id": 1},
    "request.list": {},
    "queue.list": {},
}


def _count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Request))


def _call(url: str, method: str, params: dict, headers: dict[str, str]) -> requests.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return requests.post(url, json=body, headers=headers, timeout=30)


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def core(db_url, tmp_path):
    seed_db(db_url)
    env = {"MAOSIC_INSTANCE_PATH": str(tmp_path / "instance"), "MAOSIC_DATABASE_URL": db_url}
    running = start_core(load_settings(environ=env), port=0, with_worker=False)
    yield running
    running.stop()


def test_strangers_are_refused_and_the_token_file_is_private(core, sessions, tmp_path):
    token_file = tmp_path / "instance" / "core.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32 and core.settings.core_token == token
    # Queue one request with the installation token, so status/cancel have a target.
    own = {"Authorization": f"Bearer {token}"}
    assert _call(core.url, "request.submit", CALLS["request.submit"], own).json()["result"]["id"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token},
                    _basic("demo", "wrong-password"), {"Authorization": "Basic !!!"}):  # fmt: skip
        for method, params in CALLS.items():
            reply = _call(core.url, method, params, headers)
            assert reply.status_code == 401, (method, headers, reply.text)
            error = reply.json()["error"]
            assert error["code"] == -32030 and "result" not in reply.json()
            assert reply.headers["WWW-Authenticate"].startswith("Basic")
    assert _count(sessions) == 1
    first = _call(core.url, "request.status", {"id": 1}, {}).json()["error"]["message"]
    assert "authentication required" in first and "Bearer" in first and "Basic" in first
    with sessions() as session:
        assert session.get(Request, 1).status.value == "queued"  # nobody cancelled it


def test_users_see_and_cancel_only_their_own_requests(core, sessions):
    demo, operator = _basic("demo", "demo-password"), _basic("operator", "operator-password")
    mine = _call(core.url, "request.submit", CALLS["request.submit"], demo).json()["result"]
    theirs = _call(core.url, "request.submit", CALLS["request.submit"], operator).json()["result"]
    with sessions() as session:
        owners = {r.id: r.owner.username for r in session.scalars(select(Request))}
    assert owners == {mine["id"]: "demo", theirs["id"]: "operator"}

    # demo: the operator's request does not exist for them, whatever they ask
    for method in ("request.status", "request.cancel"):
        error = _call(core.url, method, {"id": theirs["id"]}, demo).json()["error"]
        assert error["code"] == -32040 and "no request" in error["message"]
    listed = _call(core.url, "request.list", {}, demo).json()["result"]
    assert [r["id"] for r in listed] == [mine["id"]]
    queue = _call(core.url, "queue.list", {}, demo).json()["result"]
    assert {r["id"]: r["owner"] for r in queue} == {mine["id"]: "demo", theirs["id"]: None}
    # the acting user is never a parameter
    spoof = {**CALLS["request.submit"], "owner": "admin"}
    error = _call(core.url, "request.submit", spoof, demo).json()["error"]
    assert error["code"] == -32602 and "owner" in error["data"]
    error = _call(core.url, "request.list", {"owner": "operator"}, demo).json()["error"]
    assert error["code"] == -32602

    # the operator (staff) sees and may cancel every request
    cancelled = _call(core.url, "request.cancel", {"id": mine["id"]}, operator).json()["result"]
    assert cancelled["status"] == "cancelled"
    assert len(_call(core.url, "request.list", {}, operator).json()["result"]) == 2


def test_repeated_wrong_passwords_lock_the_account(core, sessions):
    for _ in range(5):
        reply = _call(core.url, "queue.list", {}, _basic("demo", "not-the-password"))
        assert reply.status_code == 401
    # now even the right password is refused until the lock expires
    assert _call(core.url, "queue.list", {}, _basic("demo", "demo-password")).status_code == 401
    with sessions() as session:
        user = session.scalars(select(User).where(User.username == "demo")).one()
        assert user.locked_until is not None


def test_a_configuration_is_never_read_from_a_path(core, sessions, tmp_path):
    token = core.settings.core_token
    secret = tmp_path / "instance" / "secret.txt"
    secret.write_text('{"type": "flow", "name": "leaked-secret-xyz"}')
    own = {"Authorization": f"Bearer {token}"}
    paths = ["/etc/passwd", str(secret), str(tmp_path / "instance" / "core.token"),
             "/proc/self/environ", "examples/cspbbr3.json", "/etc/passwd\x00"]  # fmt: skip
    for path in paths:
        reply = _call(core.url, "request.submit", {"config": path, "budget": 3}, own)
        text = reply.text
        assert reply.json()["error"]["code"] == -32602, text
        for leaked in ("root:", "leaked-secret-xyz", token, "chiral", "PATH="):
            assert leaked not in text, (path, text)
    assert _count(sessions) == 0


def test_the_web_site_gets_the_token_and_acts_for_its_user(core, sessions, tmp_path, monkeypatch):
    # Same installation: same instance folder and nothing else configured.
    monkeypatch.setenv("MAOSIC_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("MAOSIC_DATABASE_URL", core.settings.resolved_database_url)
    monkeypatch.setenv("MAOSIC_CORE_URL", core.url)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "t"})
    assert app.config["CORE_TOKEN"] == core.settings.core_token
    client = app.test_client()
    login = client.post("/login", data={"username": "demo", "password": "demo-password"})
    assert login.status_code == 302
    with sessions() as session:
        reaction_id = session.scalar(select(Reaction.id).where(Reaction.name.like("%CsPbBr3%")))
    form = {"source": "stored", "reaction_id": str(reaction_id), "budget": "3",
            "metric": "max_abs_cd_at_exciton", "optimizer": "random", "seed": "0"}  # fmt: skip
    reply = client.post("/requests/new", data=form)
    page = reply.get_data(as_text=True)
    assert reply.status_code == 302, page[page.find("<main") :][:3000]
    with sessions() as session:
        assert [r.owner.username for r in session.scalars(select(Request))] == ["demo"]

    # An uploaded "configuration" holding a server path is JSON text, never opened.
    secret = tmp_path / "instance" / "core.token"
    upload = {**form, "source": "upload",
              "config_file": (io.BytesIO(str(secret).encode()), "config.json")}  # fmt: skip
    reply = client.post("/requests/new", data=upload, content_type="multipart/form-data")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 400 and "not valid JSON" in page
    assert core.settings.core_token not in page and "No such file" not in page
    assert _count(sessions) == 1
    app.extensions["maosic_web"].engine.dispose()


def test_one_address_may_not_guess_passwords_for_ever(core):
    # Each guess under a new name costs the core a password hash; after 30 from one address
    # within 15 minutes it stops hashing for that address, right password or not.
    for n in range(30):
        assert (
            _call(core.url, "queue.list", {}, _basic(f"guess{n}", "pw-pw-pw-pw")).status_code == 401
        )
    reply = _call(core.url, "queue.list", {}, _basic("demo", "demo-password"))
    assert reply.status_code == 401 and "too many failed logins" in reply.json()["error"]["message"]
    # the installation's own token is not a password guess: it still works
    own = {"Authorization": f"Bearer {core.settings.core_token}"}
    assert _call(core.url, "queue.list", {}, own).json()["result"] == []
