"""A link set up wrongly says which setting to fix, and ends a request instead of pausing it for
ever (issue 17, item 8, client side).

Real daemons over real TLS on loopback: a wrong token (HTTP 401), a daemon certificate the core's
CA did not sign, a daemon that refuses the handshake for want of a client certificate (TLS 1.3
and 1.2), a client certificate from another CA, an unreadable CA file. Each is a
LinkConfigError naming the setting; the worker fails the request with that reason (not
"internal error in the core", not paused), consumes no experiment and logs at ERROR; the
terminal client says nothing was sent instead of "may or may not have carried it out".
Nothing reaches the lab in any case.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hardware_interface.auth import bearer_token_auth, load_tokens, server_ssl_context
from hardware_interface.server import DaemonHandle, start_daemon
from maosic.db.crypto import LogCipher
from maosic.db.models import Experiment, Request, RequestStatus
from maosic.hardware import (
    ClientCertificateRejected,
    DaemonCertificateRejected,
    HardwareClient,
    HardwareError,
    HardwareUnreachable,
    LinkConfigError,
    TlsSetupFailed,
    TokenRefused,
)
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService
from maosic.worker import Worker
from tests.security.helpers import lab_state, load_script
from user_control.endpoint import Endpoint
from user_control.errors import Refused, Unreachable

ROOT = Path(__file__).resolve().parents[2]
make_certs = load_script("make_certs")

TOKEN_MESSAGE = (
    "the daemon refused our token (HTTP 401): set hardware_token / MAOSIC_HARDWARE_TOKEN to a "
    "token in the daemon's token file"
)
CA_MESSAGE = "the lab's certificate is not signed by the configured CA (hardware_ca_file"
NO_CLIENT_CERT = "refused the TLS handshake: it requires a client certificate (set "


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    return make_certs.make_certs(tmp_path_factory.mktemp("certs"), clients=["core"])


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory) -> dict[str, Path]:
    return make_certs.make_certs(tmp_path_factory.mktemp("other"), clients=["mallory"])


def _daemon(certs: dict[str, Path], tls_max: ssl.TLSVersion | None = None) -> DaemonHandle:
    token = load_tokens(certs["tokens"])[0]
    context = server_ssl_context(certs["daemon"], None, certs["ca"], require_client_cert=True)
    if tls_max is not None:
        context.maximum_version = tls_max
    return start_daemon(
        sim=True, port=0, watchdog_s=0, auth=bearer_token_auth([token]), ssl_context=context
    )


@pytest.fixture(params=["tls1.3", "tls1.2"])
def daemon(request, certs) -> Iterator[DaemonHandle]:
    """The secure daemon: TLS with a client certificate required, and a bearer token."""
    tls_max = ssl.TLSVersion.TLSv1_2 if request.param == "tls1.2" else None
    handle = _daemon(certs, tls_max)
    yield handle
    handle.stop()


def _good(certs: dict[str, Path]) -> dict[str, str]:
    return {
        "token": load_tokens(certs["tokens"])[0],
        "ca_file": str(certs["ca"]),
        "client_cert": str(certs["client-core"]),
    }


def _client_error(url: str, **settings: str) -> Exception:
    client = HardwareClient(url, retries=3, backoff_s=0.5, timeout_s=20, **settings)
    started = time.monotonic()
    with pytest.raises((HardwareError, HardwareUnreachable)) as caught:
        client.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
    # a setting problem is not retried with backoff: it would fail the same way every time
    assert time.monotonic() - started < 0.5 * 2 + 1.0
    client.close()
    return caught.value


def test_good_settings_still_work(daemon, certs):
    client = HardwareClient(daemon.url, retries=0, timeout_s=20, **_good(certs))
    started = time.monotonic()
    assert client.call("system.status")["ok"] in (True, False)
    assert time.monotonic() - started < 1.0  # the TLS 1.3 verdict wait costs no time here
    client.close()


def test_wrong_token_names_the_setting(daemon, certs):
    before = lab_state(daemon.lab)
    exc = _client_error(daemon.url, **{**_good(certs), "token": "wrong-token-of-enough-length"})
    assert isinstance(exc, TokenRefused) and isinstance(exc, LinkConfigError)
    assert isinstance(exc, HardwareError) and exc.code == -32010  # callers that knew -32010
    assert TOKEN_MESSAGE in str(exc)
    assert lab_state(daemon.lab) == before


@pytest.mark.parametrize("which", ["no CA", "other CA"])
def test_daemon_certificate_not_signed_by_our_ca(daemon, certs, other_ca, which):
    before = lab_state(daemon.lab)
    settings = {**_good(certs), "ca_file": "" if which == "no CA" else str(other_ca["ca"])}
    exc = _client_error(daemon.url, **settings)
    assert isinstance(exc, DaemonCertificateRejected) and isinstance(exc, LinkConfigError)
    assert CA_MESSAGE in str(exc) and "nothing was sent" in str(exc)
    assert lab_state(daemon.lab) == before


def test_missing_client_certificate_is_a_refused_handshake(daemon, certs):
    before = lab_state(daemon.lab)
    exc = _client_error(daemon.url, **{**_good(certs), "client_cert": ""})
    assert isinstance(exc, ClientCertificateRejected) and isinstance(exc, LinkConfigError)
    assert NO_CLIENT_CERT + "hardware_client_cert" in str(exc)
    assert "nothing was sent" in str(exc)
    assert lab_state(daemon.lab) == before


def test_client_certificate_from_another_ca_is_a_refused_handshake(daemon, certs, other_ca):
    before = lab_state(daemon.lab)
    exc = _client_error(
        daemon.url, **{**_good(certs), "client_cert": str(other_ca["client-mallory"])}
    )
    assert isinstance(exc, ClientCertificateRejected)
    assert "does not accept our client certificate" in str(exc)
    assert str(other_ca["client-mallory"]) in str(exc)
    assert lab_state(daemon.lab) == before


def test_unreadable_ca_file(daemon, certs, tmp_path):
    exc = _client_error(daemon.url, **{**_good(certs), "ca_file": str(tmp_path / "none.pem")})
    assert isinstance(exc, TlsSetupFailed) and isinstance(exc, LinkConfigError)
    assert "hardware_ca_file" in str(exc) and "none.pem" in str(exc)


# -- the worker: the request fails with the reason, no experiment, logged at ERROR -------------


def _submit(sessions) -> int:
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text())
    sub = CoreService(sessions).submit(
        INSTALLATION, config=config, budget=2, optimizer="random", seed=1
    )
    return int(sub["id"])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"token": "wrong-token-of-enough-length"}, TOKEN_MESSAGE),
        ({"ca_file": ""}, CA_MESSAGE),
        ({"client_cert": ""}, NO_CLIENT_CERT + "hardware_client_cert"),
    ],
    ids=["token", "ca", "client-cert"],
)
def test_worker_fails_the_request_with_the_setting_to_fix(
    sessions, certs, tmp_path, caplog, change, expected
):
    handle = _daemon(certs)
    try:
        before = lab_state(handle.lab)
        request_id = _submit(sessions)
        worker = Worker(
            sessions,
            handle.url,
            LogCipher.from_file(tmp_path / "log.key"),
            poll_s=0.01,
            paused_retry_s=30.0,  # a paused request would make run_once wait this long
            rpc_retries=1,
            **{**_good(certs), **change},
        )
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            assert worker.run_once()
        assert time.monotonic() - started < 10.0
        with sessions() as session:
            request = session.get(Request, request_id)
            assert request.status == RequestStatus.FAILED, (request.status, request.failure_reason)
            assert expected in request.failure_reason
            assert "internal error" not in request.failure_reason
            experiments = session.scalar(
                select(func.count())
                .select_from(Experiment)
                .where(Experiment.request_id == request_id)
            )
            assert experiments == 0  # no experiment consumed
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(expected in r.getMessage() for r in errors), [r.getMessage() for r in errors]
        assert not any(r.exc_info for r in errors)  # a sentence, not a traceback
        assert lab_state(handle.lab) == before
    finally:
        handle.stop()


# -- the terminal client ------------------------------------------------------------------


def test_terminal_client_without_client_certificate_says_nothing_was_sent(daemon, certs):
    before = lab_state(daemon.lab)
    settings = {**_good(certs), "client_cert": ""}
    endpoint = Endpoint("hardware", daemon.url, retries=0, timeout_s=20, **settings)
    with pytest.raises(Unreachable) as caught:
        endpoint.call("heater.set", setpoint_C=150.0, wait_stable=False)
    message = caught.value.message
    assert "may or may not" not in message
    assert "refused the TLS handshake: it requires a client certificate" in message
    assert "client_cert" in message and "nothing was sent" in message
    assert lab_state(daemon.lab) == before


def test_terminal_client_with_wrong_token_names_the_option(daemon, certs):
    before = lab_state(daemon.lab)
    settings = {**_good(certs), "token": "wrong-token-of-enough-length"}
    endpoint = Endpoint("hardware", daemon.url, retries=0, timeout_s=20, **settings)
    with pytest.raises(Refused) as caught:
        endpoint.call("heater.set", setpoint_C=150.0, wait_stable=False)
    message = caught.value.message
    assert "not authorised" in message and "refused our token (HTTP 401)" in message
    assert "--hardware-token" in message and "hardware_token" in message
    assert lab_state(daemon.lab) == before
