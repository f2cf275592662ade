"""The core's request handler with `core_token` set: callers without the token are refused
before anything is stored; the web site sends the token taken from the same setting."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from cloud import create_app
from maosic.config import load_settings
from maosic.core import start_core
from maosic.db.models import Reaction, Request
from maosic.db.seed import seed as seed_db
from tests.core.rpc_helpers import cspbbr3_config

TOKEN = "core-token-0123456789abcdef"


def _count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Request))


def _submit(url: str, headers: dict[str, str]) -> requests.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "request.submit",
            "params": {"config": cspbbr3_config(), "budget": 3}}  # fmt: skip
    return requests.post(url, json=body, headers=headers, timeout=30)


def test_core_token_refuses_strangers_and_the_web_site_sends_it(
    db_url, sessions, tmp_path, monkeypatch
):
    seed_db(db_url)
    env = {
        "MAOSIC_INSTANCE_PATH": str(tmp_path),
        "MAOSIC_DATABASE_URL": db_url,
        "MAOSIC_CORE_TOKEN": TOKEN,
    }
    core = start_core(load_settings(environ=env), port=0, with_worker=False)
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            reply = _submit(core.url, headers)
            assert reply.status_code == 401 and "bearer token" in reply.json()["error"]
        assert _count(sessions) == 0
        assert _submit(core.url, {"Authorization": f"Bearer {TOKEN}"}).json()["result"]["id"]
        assert _count(sessions) == 1

        # the web site reads core_token from the same settings (here: the environment)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("MAOSIC_CORE_URL", core.url)
        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "t"})
        assert app.config["CORE_TOKEN"] == TOKEN
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
        assert _count(sessions) == 2
        app.extensions["maosic_web"].engine.dispose()
    finally:
        core.stop()
