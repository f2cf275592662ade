"""The core's daemon client: what it retries, and what it must never repeat blindly."""

import socket
import threading

import pytest

from maosic.hardware import HardwareClient, HardwareLost, HardwareUnreachable


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
