"""The operator page against a daemon that requires TLS, a client certificate and a token.

The web site's daemon link is the core's own client (maosic.hardware.HardwareClient) with the
web settings HARDWARE_TOKEN, HARDWARE_CA_FILE and HARDWARE_CLIENT_CERT: with them the page
works (status, a manual command under the lease); without the client certificate it says which
setting to fix instead of failing every command with CERTIFICATE_VERIFY_FAILED.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from cloud import create_app
from hardware_interface.auth import bearer_token_auth, load_tokens, server_ssl_context
from hardware_interface.server import DaemonHandle, start_daemon
from tests.cloud.conftest import login
from tests.security.helpers import load_script

make_certs = load_script("make_certs")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    return make_certs.make_certs(tmp_path_factory.mktemp("certs"), clients=["web"])


@pytest.fixture
def tls_daemon(certs) -> Iterator[DaemonHandle]:
    """As ``python -m hardware_interface --tls ... --require-client-cert --token-file``."""
    token = load_tokens(certs["tokens"])[0]
    context = server_ssl_context(certs["daemon"], None, certs["ca"], require_client_cert=True)
    handle = start_daemon(
        sim=True, port=0, watchdog_s=0, auth=bearer_token_auth([token]), ssl_context=context
    )
    yield handle
    handle.stop()


def _app(db_url, log_key, url: str, **hardware: str) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "tls-secret",
            "WTF_CSRF_ENABLED": False,
            "CORE_URL": "http://127.0.0.1:9/",
            "CORE_TOKEN": "unused",
            "HARDWARE_URL": url,
            "LOG_KEY_FILE": str(log_key),
            "RPC_TIMEOUT_S": 10.0,
            **hardware,
        }
    )


def test_operator_page_works_over_mutual_tls(db_url, web_sessions, log_key, tls_daemon, certs):
    assert tls_daemon.url.startswith("https://")
    app = _app(
        db_url,
        log_key,
        tls_daemon.url,
        HARDWARE_TOKEN=load_tokens(certs["tokens"])[0],
        HARDWARE_CA_FILE=str(certs["ca"]),
        HARDWARE_CLIENT_CERT=str(certs["client-web"]),
    )
    client = app.test_client()
    login(client, "operator")
    status = client.get("/operator/hardware/status.json").get_json()
    assert status["reachable"] is True, status
    assert status["status"]["modules"] and status["lease"]["holder"] is None
    taken = client.post("/operator/hardware/lease", json={"action": "take"}).get_json()
    assert taken["ok"] is True, taken
    fill = {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.1}
    done = client.post("/operator/hardware/command", json={"method": "pump.fill", "params": fill})
    assert done.status_code == 200 and done.get_json()["ok"] is True, done.get_json()
    assert tls_daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.1)
    app.extensions["maosic_web"].engine.dispose()


def test_missing_client_certificate_names_the_setting(
    db_url, web_sessions, log_key, tls_daemon, certs
):
    app = _app(
        db_url,
        log_key,
        tls_daemon.url,
        HARDWARE_TOKEN=load_tokens(certs["tokens"])[0],
        HARDWARE_CA_FILE=str(certs["ca"]),
    )
    client = app.test_client()
    login(client, "operator")
    status = client.get("/operator/hardware/status.json").get_json()
    assert status["reachable"] is False
    assert "hardware_client_cert" in status["error"] and "nothing was sent" in status["error"]
    reply = client.post("/operator/hardware/command", json={"method": "heater.off"})
    assert reply.status_code == 503 and "hardware_client_cert" in reply.get_json()["error"]
    app.extensions["maosic_web"].engine.dispose()


def test_web_settings_carry_the_daemon_tls_files(tmp_path):
    from cloud.settings import layered_config
    from maosic.config import load_settings

    env = {
        "MAOSIC_INSTANCE_PATH": str(tmp_path),
        "MAOSIC_HARDWARE_CA_FILE": "/etc/maosic/ca.pem",
        "MAOSIC_HARDWARE_CLIENT_CERT": "/etc/maosic/client-web.pem",
    }
    config = layered_config({"SECRET_KEY": "x", "CORE_TOKEN": "y"}, load_settings(environ=env))
    assert config["HARDWARE_CA_FILE"] == "/etc/maosic/ca.pem"
    assert config["HARDWARE_CLIENT_CERT"] == "/etc/maosic/client-web.pem"
