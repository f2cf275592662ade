"""What makes the site fast must not make it wrong: caches, query counts, asset versions, the
keep-alive RPC client and the server settings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import event, select, update
from waitress.server import create_server

from cloud.assets import AssetVersions
from cloud.cache import LruCache
from cloud.rpc_client import RpcClient, RpcFailure, RpcUnavailable
from cloud.serve import make_web_server
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    PeakFit,
    Request,
    RequestStatus,
    Spectrum,
)
from tests.cloud.conftest import login
from tests.cloud.helpers import add_run, gaussian


@contextmanager
def _sql_statements(engine) -> Iterator[list[str]]:
    """The SQL statements the engine runs inside the block (a list, cleared at will)."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _finish_all(sessions, request_id: int) -> None:
    with sessions.begin() as session:
        session.execute(
            update(Experiment)
            .where(Experiment.request_id == request_id)
            .values(finished_at=datetime(2026, 11, 1, 12, 0, 0))
        )


def test_finished_experiment_view_is_cached_and_unfinished_is_not(app, client, web_sessions):
    run = add_run(web_sessions, "demo", n_experiments=2)
    _finish_all(web_sessions, run)
    login(client, "demo")
    engine = app.extensions["maosic_web"].engine
    with _sql_statements(engine) as statements:
        first = client.get(f"/requests/{run}/experiments/1").data.decode()
        spectra_queries = sum("FROM spectra" in s for s in statements)
        statements.clear()
        again = client.get(f"/requests/{run}/experiments/1").data.decode()
    assert spectra_queries >= 1 and not any("FROM spectra" in s for s in statements)
    assert first == again  # the same page, from the cache
    assert "455.0" in again and "cd_at_exciton_mdeg" in again
    # A running experiment (no finish time) is read afresh: a spectrum stored later shows up.
    with web_sessions.begin() as session:
        exp = Experiment(
            request_id=run, number=3, params={"T": 120.0, "C": 0.5}, status=ExperimentStatus.RUNNING
        )
        session.add(exp)
    assert "No spectra stored" in client.get(f"/requests/{run}/experiments/3").data.decode()
    with web_sessions.begin() as session:
        exp_id = session.scalars(select(Experiment.id).where(Experiment.number == 3)).one()
        wl = [400.0 + 2 * i for i in range(101)]
        session.add(
            Spectrum(
                experiment_id=exp_id,
                kind="pl",
                unit="counts",
                n_points=101,
                wavelength_nm=wl,
                value=gaussian(wl, 510.0, 1.0, 20.0),
            )
        )
    assert "No spectra stored" not in client.get(f"/requests/{run}/experiments/3").data.decode()


def test_my_requests_query_count_does_not_grow_with_the_list(app, client, web_sessions):
    login(client, "demo")
    engine = app.extensions["maosic_web"].engine
    counts = []
    for _ in range(2):
        # Finished runs: only the one running request gets its own time-left estimate.
        add_run(web_sessions, "demo", n_experiments=1, status=RequestStatus.DONE)
        add_run(web_sessions, "demo", n_experiments=1, status=RequestStatus.DONE)
        with _sql_statements(engine) as statements:
            assert client.get("/").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]  # no query per listed request (no N+1)


def test_fit_is_drawn_only_over_its_span(client, web_sessions):
    run = add_run(web_sessions, "demo", n_experiments=1)
    with web_sessions.begin() as session:
        fit = session.scalars(select(PeakFit)).one()
        fit.baseline = {
            "coefficients": [0.0],
            "order": 0,
            "scattering": False,
            "span_nm": [420, 500],
        }
    login(client, "demo")
    latest = client.get(f"/requests/{run}/live.json").get_json()["latest"]
    cd = next(s for s in latest["spectra"] if s["kind"] == "cd")
    fit = cd["fit"]
    assert fit["span_nm"] == [420.0, 500.0]
    assert fit["wavelength_nm"] == [x for x in cd["wavelength_nm"] if 420 <= x <= 500]
    assert len(fit["curve"]) == len(fit["wavelength_nm"]) < len(cd["wavelength_nm"])
    peak = fit["wavelength_nm"].index(456.0)
    assert fit["curve"][peak] == pytest.approx(
        cd["value"][cd["wavelength_nm"].index(456.0)], abs=1e-6
    )
    data = client.get(f"/requests/{run}/data.json").get_json()
    stored_fit = data["experiments"][0]["spectra"][1]["fit"]
    assert stored_fit["span_nm"] == [420.0, 500.0] and "curve" not in stored_fit
    # The cached payload was not edited by the download.
    again = client.get(f"/requests/{run}/live.json").get_json()["latest"]["spectra"][1]["fit"]
    assert "curve" in again


def test_request_is_loaded_with_reaction_and_owner_in_one_query(app, client, web_sessions):
    run = add_run(web_sessions, "demo", n_experiments=1)
    login(client, "demo")
    engine = app.extensions["maosic_web"].engine
    with _sql_statements(engine) as statements:
        assert client.get(f"/requests/{run}").status_code == 200
    assert not any(s.lstrip().startswith("SELECT reactions.") for s in statements)
    assert sum("FROM requests" in s for s in statements) >= 1
    with web_sessions() as session:
        assert session.get(Request, run).owner.username == "demo"


def test_lru_cache_keeps_the_recently_used():
    cache = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2
    with pytest.raises(ValueError, match="max_entries"):
        LruCache(0)


def test_static_files_carry_a_content_version_and_a_long_lifetime(client):
    page = client.get("/login").data.decode()
    css = page.split('href="/static/app.css?v=')[1].split('"')[0]
    reply = client.get(f"/static/app.css?v={css}")
    assert reply.status_code == 200
    assert (
        "immutable" in reply.headers["Cache-Control"]
        and "max-age=31536000" in (reply.headers["Cache-Control"])
    )
    stale = client.get("/static/app.css?v=0123456789ab")
    assert "immutable" not in stale.headers.get("Cache-Control", "")  # revalidated as before


def test_asset_version_follows_the_content(tmp_path):
    asset = tmp_path / "a.js"
    asset.write_text("one")
    versions = AssetVersions(str(tmp_path))
    first = versions.version("a.js")
    asset.write_text("two, longer")
    assert versions.version("a.js") not in (None, first)
    assert versions.version("missing.js") is None
    assert versions.version("../outside.js") is None


@pytest.fixture
def rpc_server() -> Iterator[tuple[str, list[str]]]:
    """A JSON-RPC echo server that records the client port of every call."""
    peers: list[str] = []

    def app(environ, start_response):
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        peers.append(environ["REMOTE_PORT"])
        if body["method"] == "fail":
            reply = {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32602, "message": "no"}}
        elif body["method"] == "html":
            start_response("500 Internal Server Error", [("Content-Type", "text/html")])
            return [b"<html>oops</html>"]
        else:
            reply = {"jsonrpc": "2.0", "id": body["id"], "result": body["params"]}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(reply).encode()]

    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}/", peers
    server.close()


def test_rpc_client_keeps_its_connection_and_maps_errors(rpc_server):
    url, peers = rpc_server
    client = RpcClient(url, timeout_s=5)
    assert client.call("echo", x=1) == {"x": 1}
    assert client.call("echo", y=[1, 2]) == {"y": [1, 2]}
    assert len(peers) == 2 and peers[0] == peers[1]  # one keep-alive connection
    with pytest.raises(RpcFailure, match="no"):
        client.call("fail")
    with pytest.raises(RpcUnavailable, match="HTTP 500, not JSON-RPC"):
        client.call("html")
    assert client.call("echo", z=3) == {"z": 3}  # still usable after the errors
    with pytest.raises(RpcUnavailable, match="did not answer"):
        RpcClient("http://127.0.0.1:9/", timeout_s=2).call("echo")


def test_web_server_settings_are_checked(app):
    with pytest.raises(ValueError, match="threads"):
        make_web_server(app, "127.0.0.1", 0, threads=0)
    with pytest.raises(ValueError, match="switch_interval_s"):
        make_web_server(app, "127.0.0.1", 0, switch_interval_s=0.0)
    import sys

    before = sys.getswitchinterval()
    server = make_web_server(app, "127.0.0.1", 0, threads=3, switch_interval_s=0.002)
    try:
        assert server.adj.threads == 3
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        server.close()
        sys.setswitchinterval(before)
