"""The web site against the real core handler (no worker: requests stay queued)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from cloud import create_app
from maosic.config import load_settings
from maosic.db.models import Request, RequestStatus
from tests.cloud.conftest import login
from tests.cloud.helpers import EXAMPLES


@pytest.fixture
def core_app(db_url, web_sessions, tmp_path, log_key) -> Iterator[Flask]:
    from maosic.core import start_core

    settings = load_settings(
        environ={"MAOSIC_INSTANCE_PATH": str(tmp_path / "instance"), "MAOSIC_DATABASE_URL": db_url}
    )
    core = start_core(settings, port=0, with_worker=False)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "CORE_URL": core.url,
            "CORE_TOKEN": core.settings.core_token,  # the instance token the core made
            "SECRET_KEY": "s",
            "WTF_CSRF_ENABLED": False,
            "LOG_KEY_FILE": str(log_key),
        }
    )
    yield app
    app.extensions["maosic_web"].engine.dispose()
    core.stop()


def _metric(client) -> str:
    page = client.get("/requests/new").data.decode()
    return page.split('<select id="metric" name="metric">')[1].split('value="')[1].split('"')[0]


def test_submit_queue_and_cancel_through_the_core(core_app, web_sessions):
    client = core_app.test_client()
    login(client, "demo")
    metric = _metric(client)
    with web_sessions() as session:
        from tests.cloud.helpers import cspbbr3_reaction

        rid = cspbbr3_reaction(session).id
    reply = client.post(
        "/requests/new",
        data={
            "source": "stored",
            "reaction_id": str(rid),
            "metric": metric,
            "budget": "5",
            "optimizer": "random",
            "seed": "1",
        },
    )
    assert reply.status_code == 302, reply.data.decode()[-2000:]
    request_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    with web_sessions() as session:
        stored = session.get(Request, request_id)
        assert stored.owner.username == "demo" and stored.budget == 5
        assert stored.optimizer == "random" and stored.status == RequestStatus.QUEUED
    rows = client.get("/queue.json").get_json()["queue"]
    assert [(r["id"], r["position"]) for r in rows] == [(request_id, 1)]
    client.post(f"/requests/{request_id}/cancel")
    with web_sessions() as session:
        assert session.get(Request, request_id).status == RequestStatus.CANCELLED
    assert client.get("/queue.json").get_json()["queue"] == []


def test_core_formula_error_reaches_the_form(core_app, web_sessions):
    client = core_app.test_client()
    login(client, "demo")
    metric = _metric(client)
    broken = "R1·SP1[0.1, 0, 0.1] × H[$T, 10, 60]\n | ABS-CD[100] | QQ[1]"
    reply = client.post(
        "/requests/new",
        data={
            "source": "formula",
            "formula": broken,
            "metric": metric,
            "budget": "5",
            "optimizer": "random",
            "space-0-name": "T",
            "space-0-low": "90",
            "space-0-high": "180",
        },
    )
    page = reply.data.decode()
    assert reply.status_code == 400
    assert "QQ" in page and "line 2, column 18" in page
    with web_sessions() as session:
        assert session.scalars(select(Request)).first() is None


def test_uploaded_configuration_is_queued(core_app, web_sessions):
    import io

    client = core_app.test_client()
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data={
            "source": "upload",
            "metric": _metric(client),
            "budget": "3",
            "optimizer": "lhs",
            "config_file": (io.BytesIO((EXAMPLES / "cspbbr3.json").read_bytes()), "c.json"),
        },
        content_type="multipart/form-data",
    )
    assert reply.status_code == 302, reply.data.decode()[-2000:]


def test_formula_with_a_fixed_variable_is_queued_with_it_constant(core_app, web_sessions):
    from maosic.db.models import Reaction

    client = core_app.test_client()
    login(client, "demo")
    formula = "R1·SP1[$v, 0, 0.1] × H[$T, 10, 60] | ABS-CD[100]"
    reply = client.post(
        "/requests/new",
        data={
            "source": "formula",
            "formula": formula,
            "metric": _metric(client),
            "budget": "5",
            "optimizer": "random",
            "space-0-name": "T",
            "space-0-low": "90",
            "space-0-high": "180",
            "space-0-dx": "0.5",
            "space-1-name": "v",
            "space-1-low": "0.3",
            "space-1-high": "0.3",
        },
    )
    assert reply.status_code == 302, reply.data.decode()[-2000:]
    request_id = int(reply.headers["Location"].rsplit("/", 1)[1])
    with web_sessions() as session:
        reaction = session.get(Reaction, session.get(Request, request_id).reaction_id)
        assert reaction.formula == formula
        assert reaction.config["param"]["v"] == {"default": 0.3, "var": 0}
        assert reaction.config["param"]["T"]["var"] == 1
