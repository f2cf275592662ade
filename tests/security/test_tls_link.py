"""The hardware link: real TLS handshakes on loopback, client certificates and bearer tokens.

Every refused call is checked on the SimLab itself: nothing filled, heated or moved.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hardware_interface.auth import (
    AuthSetupError,
    bearer_token_auth,
    load_tokens,
    server_ssl_context,
)
from hardware_interface.server import DaemonHandle, main, start_daemon
from maosic.hardware import HardwareClient, HardwareError, HardwareLost, HardwareUnreachable
from tests.security.helpers import ATTACK, lab_state, load_script

make_certs = load_script("make_certs")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    return make_certs.make_certs(
        tmp_path_factory.mktemp("certs"), server_names=["lab-pc.local"], clients=["core", "alice"]
    )


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> dict[str, Path]:
    """A second, unrelated CA: its certificates must be worthless to our daemon."""
    return make_certs.make_certs(tmp_path_factory.mktemp("other"), clients=["mallory"])


@pytest.fixture
def secure_daemon(certs) -> Iterator[tuple[DaemonHandle, str]]:
    token = load_tokens(certs["tokens"])[0]
    context = server_ssl_context(certs["daemon"], None, certs["ca"], require_client_cert=True)
    handle = start_daemon(
        sim=True, port=0, watchdog_s=0, auth=bearer_token_auth([token]), ssl_context=context
    )
    yield handle, token
    handle.stop()


def _client(url: str, **kwargs) -> HardwareClient:
    return HardwareClient(url, retries=0, timeout_s=20, **kwargs)


def _attack(client: HardwareClient) -> list[Exception]:
    errors = []
    for method, params in ATTACK:
        with pytest.raises((HardwareError, HardwareLost, HardwareUnreachable)) as caught:
            client.call(method, **params)
        errors.append(caught.value)
    return errors


def test_authenticated_client_commands_the_lab_over_tls(secure_daemon, certs):
    handle, token = secure_daemon
    assert handle.url.startswith("https://127.0.0.1:")
    client = _client(
        handle.url, token=token, ca_file=str(certs["ca"]), client_cert=str(certs["client-core"])
    )
    assert client.call("system.describe")["simulated"] is True
    client.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
    assert handle.lab.syringe_volume_mL("SP1") == pytest.approx(0.3)
    # the handshake really is TLS with our daemon certificate
    raw = ssl.create_default_context(cafile=str(certs["ca"]))
    raw.load_cert_chain(str(certs["client-alice"]))
    with socket.create_connection(("127.0.0.1", handle.port), timeout=5) as sock:
        with raw.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            subject = dict(x[0] for x in tls.getpeercert()["subject"])
            assert subject["commonName"] == "maosic-daemon"


def test_plain_http_to_tls_daemon_is_refused_in_words(secure_daemon):
    handle, token = secure_daemon
    before = lab_state(handle.lab)
    plain = handle.url.replace("https://", "http://")
    for method, params in ATTACK:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply = requests.post(
            plain, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert reply.status_code == 400
        assert "HTTPS only" in reply.json()["error"]
    assert lab_state(handle.lab) == before


def test_no_client_certificate_fails_the_handshake(secure_daemon, certs):
    handle, token = secure_daemon
    before = lab_state(handle.lab)
    errors = _attack(_client(handle.url, token=token, ca_file=str(certs["ca"])))
    assert all(isinstance(e, (HardwareLost, HardwareUnreachable)) for e in errors), errors
    assert lab_state(handle.lab) == before


def test_certificate_from_another_ca_is_refused(secure_daemon, certs, other_ca):
    handle, token = secure_daemon
    before = lab_state(handle.lab)
    client = _client(
        handle.url,
        token=token,
        ca_file=str(certs["ca"]),
        client_cert=str(other_ca["client-mallory"]),
    )
    errors = _attack(client)
    assert all(isinstance(e, (HardwareLost, HardwareUnreachable)) for e in errors), errors
    assert lab_state(handle.lab) == before


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-of-enough-length", "Basic abc"])
def test_missing_or_wrong_token_gets_401_and_nothing_runs(secure_daemon, certs, header):
    handle, token = secure_daemon
    before = lab_state(handle.lab)
    session = requests.Session()
    session.cert = str(certs["client-core"])
    for method, params in ATTACK:
        headers = {} if header is None else {"Authorization": header}
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        reply = session.post(
            handle.url, json=body, headers=headers, timeout=5, verify=str(certs["ca"])
        )
        assert reply.status_code == 401, reply.text
        assert reply.json() == {"error": "unauthorized"}
    assert lab_state(handle.lab) == before
    # and the core's client reports it as a refusal naming the daemon
    client = _client(handle.url, ca_file=str(certs["ca"]), client_cert=str(certs["client-core"]))
    errors = _attack(client)
    assert all(isinstance(e, HardwareError) and e.code == -32010 for e in errors)
    assert "refused by the daemon" in str(errors[0])
    assert lab_state(handle.lab) == before


def test_core_refuses_a_daemon_it_cannot_verify(secure_daemon, certs, other_ca):
    handle, token = secure_daemon
    before = lab_state(handle.lab)
    # trusting another CA (an impostor daemon would look like this to the core)
    client = _client(
        handle.url,
        token=token,
        ca_file=str(other_ca["ca"]),
        client_cert=str(certs["client-core"]),
    )
    errors = _attack(client)
    assert all("CERTIFICATE_VERIFY_FAILED" in repr(e.__cause__) for e in errors), errors
    assert lab_state(handle.lab) == before


def test_silent_client_does_not_stall_the_daemon(secure_daemon, certs):
    handle, token = secure_daemon
    client = _client(
        handle.url, token=token, ca_file=str(certs["ca"]), client_cert=str(certs["client-core"])
    )
    with socket.create_connection(("127.0.0.1", handle.port)) as idle:
        idle.sendall(b"\x16")  # starts a TLS record, then goes quiet
        started = time.monotonic()
        assert client.call("system.status")["ok"] in (True, False)
        assert time.monotonic() - started < 2.0


def test_daemon_flags_and_setup_errors(certs, tmp_path, capsys):
    assert main(["--sim", "--port", "0", "--require-client-cert"]) == 1
    assert "need --tls-cert" in capsys.readouterr().out
    assert main(["--sim", "--port", "0", "--tls-cert", str(tmp_path / "none.pem")]) == 1
    assert "cannot load the daemon certificate" in capsys.readouterr().out
    short = tmp_path / "short.tokens"
    short.write_text("# comment\nabc\n")
    assert main(["--sim", "--port", "0", "--token-file", str(short)]) == 1
    assert "shorter than 16" in capsys.readouterr().out
    with pytest.raises(AuthSetupError, match="needs --client-ca"):
        server_ssl_context(certs["daemon"], require_client_cert=True)


def test_make_certs_refuses_bad_names_and_overwrites(tmp_path, capsys):
    assert make_certs.main([str(tmp_path / "c"), "--client", "bad name;rm"]) == 1
    assert "client name 'bad name;rm'" in capsys.readouterr().err
    assert make_certs.main([str(tmp_path / "c")]) == 0
    assert make_certs.main([str(tmp_path / "c")]) == 1
    assert "pass --force" in capsys.readouterr().err
    key = tmp_path / "c" / "client-core.pem"
    assert key.stat().st_mode & 0o077 == 0
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o700
