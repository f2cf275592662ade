"""No default passwords where nobody asked for a demo (issue 17, doors 3, 6 and 9).

The demo accounts are created once, by the all-in-one start on a fresh SQLite instance, and
never again: a renamed or deactivated ``admin`` stays so across restarts. A deployment (another
database, or ``demo_accounts = false``) starts with no account and says how to make the first
admin. Web settings reach Flask from the same layers as the core's (instance file, environment).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

import run
from cloud import create_app
from maosic.config import load_settings
from maosic.db.models import Role, User
from maosic.db.passwords import verify_password
from maosic.db.session import make_engine, session_factory

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "web-test-installation-token"


def _users(url: str) -> dict[str, tuple[Role, bool]]:
    engine = make_engine(url)
    with session_factory(engine)() as session:
        rows = {u.username: (u.role, u.active) for u in session.scalars(select(User))}
    engine.dispose()
    return rows


def test_demo_accounts_are_made_once_and_a_renamed_admin_stays_renamed(tmp_path):
    settings = load_settings(environ={"MAOSIC_INSTANCE_PATH": str(tmp_path)})
    url = settings.resolved_database_url
    assert run._prepare_database(settings, demo=True) is True
    assert set(_users(url)) == {"demo", "operator", "admin"}

    engine = make_engine(url)
    with session_factory(engine)() as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        admin.username = "lab-head"  # what an operator does with a default account
        operator = session.scalars(select(User).where(User.username == "operator")).one()
        operator.active = False
        session.commit()
    engine.dispose()
    for _ in range(2):  # two restarts, all-in-one and core alone
        run._prepare_database(settings, demo=True)
        run._prepare_database(settings)
    users = _users(url)
    assert set(users) == {"demo", "operator", "lab-head"}
    assert users["operator"] == (Role.OPERATOR, False) and users["lab-head"][0] == Role.ADMIN


def test_a_deployment_starts_without_accounts_and_says_how_to_make_one(db_url, tmp_path, caplog):
    # A database named in the settings is a deployment: no demo accounts, even from run.py.
    settings = load_settings(
        environ={"MAOSIC_INSTANCE_PATH": str(tmp_path), "MAOSIC_DATABASE_URL": db_url}
    )
    with caplog.at_level(logging.WARNING):
        assert run._prepare_database(settings, demo=True) is False
    assert _users(db_url) == {}
    assert "scripts/create_db.py --create-admin NAME" in caplog.text
    assert "password" not in caplog.text.replace("asks for the password", "")

    # The default SQLite file with demo_accounts off, and `run.py core`: no accounts either.
    off = load_settings(
        environ={"MAOSIC_INSTANCE_PATH": str(tmp_path / "a"), "MAOSIC_DEMO_ACCOUNTS": "false"}
    )
    run._prepare_database(off, demo=True)
    core_only = load_settings(environ={"MAOSIC_INSTANCE_PATH": str(tmp_path / "b")})
    run._prepare_database(core_only)
    assert _users(off.resolved_database_url) == _users(core_only.resolved_database_url) == {}


def test_create_admin_asks_for_a_password_and_refuses_a_taken_name(db_url):
    def create(name: str, password: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "scripts/create_db.py", "--database-url", db_url,
             "--create-admin", name, "--password-stdin"],
            cwd=ROOT, input=password + "\n", capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    made = create("lab-head", "a long enough secret")
    assert made.returncode == 0, made.stderr
    assert "a long enough secret" not in made.stdout + made.stderr
    again = create("lab-head", "another long secret")
    assert again.returncode == 2 and "exists already" in again.stderr
    short = create("second", "short")
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        (user,) = session.scalars(select(User)).all()
        assert (user.username, user.role) == ("lab-head", Role.ADMIN)
        assert verify_password(user.password_hash, "a long enough secret")
    engine.dispose()


def test_the_banner_and_logs_hide_the_database_password():
    shown = run._shown_url("mysql+pymysql://maosic:s3cret-pw@127.0.0.1:3306/maosic")
    assert "s3cret-pw" not in shown and shown.startswith("mysql+pymysql://maosic:***@")


def _session_cookie(reply) -> str:
    (cookie,) = [c for c in reply.headers.getlist("Set-Cookie") if c.startswith("session=")]
    return cookie


def _client_after_login(app, address: str, forwarded: dict[str, str]):
    client = app.test_client()
    return client.post(
        "/login",
        data={"username": "demo", "password": "wrong-password"},
        headers=forwarded,
        environ_base={"REMOTE_ADDR": address},
    )


def test_web_settings_come_from_the_instance_file_and_the_environment(db_url, tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "maosic.toml").write_text("session_cookie_secure = true\ntrusted_proxies = 1\n")
    base = {"MAOSIC_INSTANCE_PATH": str(instance), "MAOSIC_DATABASE_URL": db_url}
    settings = load_settings(environ=base)
    assert settings.session_cookie_secure is True and settings.trusted_proxies == 1
    env_only = load_settings(
        environ={"MAOSIC_INSTANCE_PATH": str(tmp_path), "MAOSIC_SESSION_COOKIE_SECURE": "yes"}
    )
    assert env_only.session_cookie_secure is True

    app = create_app({"TESTING": True, "SECRET_KEY": "s", "CORE_TOKEN": TOKEN,
                      "DATABASE_URL": db_url,
                      "SESSION_COOKIE_SECURE": settings.session_cookie_secure})  # fmt: skip
    reply = app.test_client().get("/login")  # the form's CSRF token opens a session
    assert "Secure" in _session_cookie(reply)
    app.extensions["maosic_web"].engine.dispose()

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "s",
                      "CORE_TOKEN": TOKEN, "DATABASE_URL": db_url, "LOGIN_IP_MAX_FAILURES": 3,
                      "TRUSTED_PROXIES": settings.trusted_proxies})  # fmt: skip
    # Behind one trusted proxy each client has its own login rate limit.
    proxy = "10.0.0.1"
    for _ in range(3):
        _client_after_login(app, proxy, {"X-Forwarded-For": "198.51.100.7"})
    blocked = _client_after_login(app, proxy, {"X-Forwarded-For": "198.51.100.7"})
    other = _client_after_login(app, proxy, {"X-Forwarded-For": "198.51.100.8"})
    assert blocked.status_code == 429 and other.status_code != 429
    app.extensions["maosic_web"].engine.dispose()


def test_a_request_over_https_gets_a_secure_cookie_without_the_setting(db_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "s", "CORE_TOKEN": TOKEN,
                      "DATABASE_URL": db_url, "TRUSTED_PROXIES": 1})  # fmt: skip
    client = app.test_client()
    plain = client.get("/login")
    assert "Secure" not in _session_cookie(plain)
    tls = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in _session_cookie(tls)
    app.extensions["maosic_web"].engine.dispose()
