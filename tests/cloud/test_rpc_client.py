"""cloud.rpc_client on maosic.hardware.HardwareClient: headers per call, the lease, the errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from waitress.server import create_server

from cloud.rpc_client import RpcClient, RpcFailure, RpcUnavailable
from hardware_interface.errors import LEASE_HELD
from maosic.hardware import NOT_AUTHORISED


@pytest.fixture
def header_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A JSON-RPC server that records the headers of every call; "secret" must be the token."""
    seen: list[dict[str, str]] = []

    def app(environ, start_response):
        body = json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        headers = {k[5:]: v for k, v in environ.items() if k.startswith("HTTP_")}
        seen.append(headers)
        if headers.get("AUTHORIZATION") != "Bearer secret":
            error = {"code": -32010, "message": "who are you"}
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": "ok"}).encode()]

    server = create_server(app, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.socket.getsockname()[1]}/", seen
    server.close()


def test_user_and_lease_headers_go_with_their_call_only(header_server):
    url, seen = header_server
    client = RpcClient.for_core(url, timeout_s=5, token="secret")
    assert client.call("request.cancel", id=1, as_user="alice") == "ok"
    assert client.call("core.describe") == "ok"
    assert client.call("pump.fill", lease_epoch=7) == "ok"
    assert client.call("pump.status") == "ok"
    assert seen[0]["X_MAOSIC_USER"] == "alice"
    assert "X_MAOSIC_USER" not in seen[1] and "X_MAOSIC_LEASE" not in seen[1]
    assert seen[2]["X_MAOSIC_LEASE"] == "7"
    assert "X_MAOSIC_LEASE" not in seen[3]


def test_a_refused_token_is_an_answer_naming_the_setting(header_server):
    url, _ = header_server
    with pytest.raises(RpcFailure) as refused:
        RpcClient.for_core(url, timeout_s=5, token="wrong").call("core.describe")
    assert refused.value.code == NOT_AUTHORISED and "who are you" in refused.value.message


def test_nobody_answering_is_unavailable_and_names_the_server():
    with pytest.raises(RpcUnavailable, match="the core at http://127.0.0.1:9/ did not answer"):
        RpcClient.for_core("http://127.0.0.1:9/", timeout_s=2, token="t").call("core.describe")
    with pytest.raises(RpcUnavailable, match="cannot set up TLS"):
        RpcClient("https://127.0.0.1:9/", ca_file="/nonexistent/ca.pem").call("system.status")


def test_the_daemons_lease_fences_calls(sim_daemon):
    client = RpcClient(sim_daemon.url, timeout_s=10)
    epoch = client.call("lease.acquire", holder="operator:test", ttl_s=30)["epoch"]
    fill = {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.1}
    with pytest.raises(RpcFailure) as held:
        client.call("pump.fill", **fill)  # no epoch while the lab is held
    assert held.value.code == LEASE_HELD and "operator:test" in held.value.message
    assert client.call("pump.fill", lease_epoch=epoch, **fill)["volume_mL"] == pytest.approx(0.1)
