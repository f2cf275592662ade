"""Accounts: register, log in/out, lock-out, change password, roles, headers and CSRF."""

from __future__ import annotations

from sqlalchemy import select

from cloud import create_app
from maosic.db.models import User
from tests.cloud.conftest import login


def test_pages_need_login(client):
    for path in ["/", "/requests/new", "/queue", "/requests/1", "/operator/hardware"]:
        reply = client.get(path)
        assert reply.status_code == 302, path
        assert "/login" in reply.headers["Location"]
    assert client.get("/queue").headers["Location"] == "/login?next=/queue"
    for path in ["/requests/1/live.json", "/queue.json", "/operator/hardware/status.json"]:
        reply = client.get(path)
        assert reply.status_code == 401 and reply.get_json()["ok"] is False, path
    assert client.post("/api/formula/check", json={"formula": "x"}).status_code == 401


def test_register_login_logout(client, web_sessions):
    reply = client.post(
        "/register",
        data={"username": "chemist", "password": "a-long-password", "confirm": "a-long-password"},
    )
    assert reply.status_code == 302
    with web_sessions() as session:
        user = session.scalars(select(User).where(User.username == "chemist")).one()
        assert user.role.value == "user"
        assert user.password_hash.startswith("scrypt:")  # never the plain password
    assert b"My requests" in client.get("/").data
    client.post("/logout")
    assert client.get("/").status_code == 302
    assert login(client, "chemist", "a-long-password").status_code == 302
    assert client.get("/").status_code == 200


def test_register_rejects_bad_input(client):
    reply = client.post("/register", data={"username": "x y", "password": "short", "confirm": "no"})
    assert reply.status_code == 200
    page = reply.data.decode()
    assert "letters, digits" in page and "at least 10" in page and "passwords differ" in page
    reply = client.post(
        "/register", data={"username": "demo", "password": "0123456789", "confirm": "0123456789"}
    )
    assert "this username is taken" in reply.data.decode()


def test_wrong_password_and_lock_out(client, web_sessions):
    for _ in range(5):
        assert login(client, "demo", "wrong-password").status_code == 401
    with web_sessions() as session:
        user = session.scalars(select(User).where(User.username == "demo")).one()
        assert user.locked_until is not None
    # Even the right password is refused while the account is locked.
    reply = login(client, "demo")
    assert reply.status_code == 429
    assert "Too many failed logins" in reply.data.decode()


def test_unknown_user_gets_the_same_message(client):
    reply = login(client, "nobody", "whatever-password")
    assert reply.status_code == 401
    assert "Wrong username or password" in reply.data.decode()


def test_change_password_logs_out_other_sessions(app, client):
    other = app.test_client()
    login(client, "demo")
    login(other, "demo")
    bad = client.post(
        "/account/password",
        data={"current": "nope", "password": "new-password-1", "confirm": "new-password-1"},
    )
    assert "not your current password" in bad.data.decode()
    ok = client.post(
        "/account/password",
        data={
            "current": "demo-password",
            "password": "new-password-1",
            "confirm": "new-password-1",
        },
    )
    assert ok.status_code == 302
    assert client.get("/").status_code == 200  # this session stays
    assert other.get("/").status_code == 302  # the other one is logged out
    client.post("/logout")
    assert login(client, "demo", "new-password-1").status_code == 302


def test_open_redirect_refused(client):
    reply = client.post(
        "/login?next=https://evil.example/", data={"username": "demo", "password": "demo-password"}
    )
    assert reply.headers["Location"] == "/"
    reply = client.post("/logout")
    reply = client.post(
        "/login?next=/queue", data={"username": "demo", "password": "demo-password"}
    )
    assert reply.headers["Location"] == "/queue"


def test_security_headers_and_cookie_flags(client):
    reply = client.get("/login")
    assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    reply = login(client, "demo")
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_csrf_required_on_forms_and_fetch(db_url, web_sessions, log_key):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "s",
            "CORE_TOKEN": "unused-installation-token",
            "LOG_KEY_FILE": str(log_key),
            "SESSION_COOKIE_SECURE": True,
        }
    )
    client = app.test_client()
    reply = client.post("/login", data={"username": "demo", "password": "demo-password"})
    assert reply.status_code == 400
    assert "form expired" in reply.data.decode()
    page = client.get("/login", base_url="https://localhost").data.decode()
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    reply = client.post(
        "/login",
        data={"username": "demo", "password": "demo-password", "csrf_token": token},
        headers={"Referer": "https://localhost/login"},
        base_url="https://localhost",
    )
    assert reply.status_code == 302
    assert "Secure" in reply.headers["Set-Cookie"]
    check = client.post(
        "/api/formula/check", json={"formula": "H[100]"}, base_url="https://localhost"
    )
    assert check.status_code == 400 and "form expired" in check.get_json()["error"]
    check = client.post(
        "/api/formula/check",
        json={"formula": "H[100]"},
        headers={"X-CSRFToken": token, "Referer": "https://localhost/requests/new"},
        base_url="https://localhost",
    )
    assert check.status_code == 200
    app.extensions["maosic_web"].engine.dispose()


def test_roles_guard_operator_and_admin_pages(client):
    login(client, "demo")
    assert client.get("/operator/hardware").status_code == 403
    assert client.get("/admin/users").status_code == 403
    assert (
        client.post("/operator/hardware/command", json={"method": "heater.off"}).status_code == 403
    )
    client.post("/logout")
    login(client, "operator")
    assert client.get("/operator/hardware").status_code == 200
    assert client.get("/admin/users").status_code == 403
    client.post("/logout")
    login(client, "admin")
    assert client.get("/operator/hardware").status_code == 200
    assert client.get("/admin/users").status_code == 200


def test_admin_changes_roles(client, web_sessions):
    login(client, "admin")
    with web_sessions() as session:
        demo = session.scalars(select(User).where(User.username == "demo")).one()
        me = session.scalars(select(User).where(User.username == "admin")).one()
    reply = client.post(
        f"/admin/users/{demo.id}", data={f"u{demo.id}-role": "operator", f"u{demo.id}-active": "y"}
    )
    assert reply.status_code == 302
    with web_sessions() as session:
        assert session.get(User, demo.id).role.value == "operator"
    reply = client.post(
        f"/admin/users/{me.id}", data={f"u{me.id}-role": "user", f"u{me.id}-active": "y"}
    )
    assert "cannot remove your own admin role" in client.get("/admin/users").data.decode()
    with web_sessions() as session:
        assert session.get(User, me.id).role.value == "admin"
    assert client.post("/admin/users/99999", data={}).status_code == 404


def test_address_rate_limit(app, client):
    app.extensions["maosic_web"].login_failures.max_failures = 3
    for name in ["a1", "a2", "a3"]:  # different (unknown) accounts from one address
        assert login(client, name, "wrong-password").status_code == 401
    reply = login(client, "demo")  # even a right password is refused from that address now
    assert reply.status_code == 429 and "from your address" in reply.data.decode()


def test_failure_window_expires():
    from maosic.ratelimit import FailureWindow

    window = FailureWindow(max_failures=2, window_s=10)
    window.record("ip", now=0.0)
    window.record("ip", now=1.0)
    assert window.blocked("ip", now=5.0)
    assert not window.blocked("other", now=5.0)
    assert not window.blocked("ip", now=10.5)  # the first failure has left the window
