"""The core's daemon client: what it retries, and what it must never repeat blindly."""

import json
import socket
import threading
import time

import pytest

from hardware_interface.server import start_daemon
from maosic.hardware import (
    INSUFFICIENT_REAGENT,
    HardwareClient,
    HardwareError,
    HardwareLost,
    HardwareUnreachable,
    LinkConfigError,
    TokenRefused,
)


def _one_shot_server(reply: bytes) -> tuple[str, threading.Thread]:
    """Accept one connection, read the request, send ``reply`` and hang up."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/", thread


def test_answer_cut_off_mid_body_is_lost_not_retried():
    url, thread = _one_shot_server(b'HTTP/1.1 200 OK\r\nContent-Length: 137\r\n\r\n{"jsonrpc"')
    calls = []
    client = HardwareClient(url, retries=3, backoff_s=0.01, on_call=calls.append)
    with pytest.raises(HardwareLost, match="pump.infuse: the answer .* broke off"):
        client.call("pump.infuse", pump="SP1", volume_mL=0.1, rate_mL_min=0.1)
    thread.join(5)
    assert len(calls) == 1 and calls[0].error  # recorded for the audit log, sent once


def test_refused_connection_is_retried_then_unreachable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = HardwareClient(f"http://127.0.0.1:{port}/", retries=2, backoff_s=0.01)
    with pytest.raises(HardwareUnreachable, match=r"does not answer \(3 attempts\)"):
        client.call("system.status")
    assert client.ping() is False


def _serve_connections(handle_one, connections: int) -> tuple[str, threading.Thread, list]:
    """Accept ``connections`` connections one after another; ``handle_one(conn, log)`` each."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    log: list[bytes] = []

    def serve() -> None:
        for _ in range(connections):
            conn, _ = server.accept()
            with conn:
                handle_one(conn, log)
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/", thread, log


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += conn.recv(65536)
    return body


def test_a_connection_the_daemon_closed_is_reopened_not_reported():
    # One answer per connection, then the server hangs up without saying so (as a restarted
    # daemon does): the next call must go out on a new connection, not fail.
    def answer_once(conn, log):
        body = json.loads(_read_request(conn))
        log.append(body["method"])
        reply = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": {"n": len(log)}})
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(reply)}\r\n\r\n{reply}".encode())

    url, thread, log = _serve_connections(answer_once, connections=2)
    client = HardwareClient(url, retries=0)
    assert client.call("system.status") == {"n": 1}
    time.sleep(0.2)  # let the close reach the client
    assert client.call("pump.stop", pump="SP1") == {"n": 2}
    thread.join(5)
    assert log == ["system.status", "pump.stop"] and client.round_trips == 2


def test_no_answer_in_time_is_lost_and_sent_once():
    def never_answer(conn, log):
        log.append(_read_request(conn))
        time.sleep(1.0)

    url, thread, log = _serve_connections(never_answer, connections=1)
    calls = []
    client = HardwareClient(url, retries=3, backoff_s=0.01, timeout_s=0.3, on_call=calls.append)
    with pytest.raises(HardwareLost, match=r"heater.set: no answer within 0.3 s"):
        client.call("heater.set", setpoint_C=120.0)
    thread.join(5)
    assert len(log) == 1 and len(calls) == 1 and calls[0].error


def test_hang_up_before_answering_is_lost_not_retried():
    url, thread, log = _serve_connections(lambda conn, log: log.append(_read_request(conn)), 1)
    client = HardwareClient(url, retries=3, backoff_s=0.01)
    with pytest.raises(HardwareLost, match="robot.move: the daemon at .* went away before"):
        client.call("robot.move", position="waste")
    thread.join(5)
    assert len(log) == 1


def test_a_batch_is_one_round_trip_and_reports_the_first_refusal():
    handle = start_daemon(sim=True, port=0, seed=0, speed=0.0, watchdog_s=0)
    try:
        calls = []
        client = HardwareClient(handle.url, retries=0, on_call=calls.append)
        status, stop = client.call_batch([("system.status", {}), ("pump.stop", {"pump": "SP1"})])
        assert "clock_s" in status and stop["pump"] == "SP1"
        assert client.round_trips == 1
        with pytest.raises(HardwareError, match="pump.fill") as refused:
            client.call_batch(
                [
                    ("pump.fill", {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 1e6}),
                    ("system.status", {}),
                ]
            )
        assert refused.value.code == INSUFFICIENT_REAGENT
        assert handle.lab.syringe_volume_mL("SP1") == 0.0
        assert client.round_trips == 2
        # every call is in the audit records, the refused one with its error, the status after
        # it with its result
        assert [c.method for c in calls] == [
            "system.status",
            "pump.stop",
            "pump.fill",
            "system.status",
        ]
        assert calls[2].error_code == INSUFFICIENT_REAGENT and calls[3].result["clock_s"] >= 0
    finally:
        handle.stop()


def test_http_401_is_a_token_refusal_naming_the_setting_and_not_retried():
    """A wrong token was a bare HardwareError that the worker reported as an internal error."""
    handle = start_daemon(
        sim=True, port=0, watchdog_s=0, auth=lambda h: h.get("Authorization") == "Bearer right"
    )
    try:
        client = HardwareClient(handle.url, token="wrong", retries=3, backoff_s=0.5)
        started = time.monotonic()
        with pytest.raises(TokenRefused) as refused:
            client.call("pump.fill", pump="SP1", reagent="Cs-oleate", volume_mL=0.3)
        assert time.monotonic() - started < 0.5  # not retried with backoff
        assert isinstance(refused.value, LinkConfigError) and refused.value.code == -32010
        assert (
            "the daemon refused our token (HTTP 401): set hardware_token / MAOSIC_HARDWARE_TOKEN"
            " to a token in the daemon's token file" in str(refused.value)
        )
        assert client.round_trips == 1
        assert handle.lab.syringe_volume_mL("SP1") == 0.0
        # a caller with its own setting names (the terminal client) gets them in the message
        client = HardwareClient(handle.url, wording={"token": "--hardware-token"}, retries=0)
        with pytest.raises(TokenRefused, match="set --hardware-token to a token"):
            client.call("system.status")
    finally:
        handle.stop()
