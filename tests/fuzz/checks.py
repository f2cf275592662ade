"""What a fuzzed JSON-RPC reply may look like: only documented errors, never a crash."""

from __future__ import annotations

import json
from typing import Any

import requests

STANDARD = {-32700, -32600, -32601, -32602}  # parse, request, method, params; never -32603
DAEMON_CODES = STANDARD | set(range(-32009, -32000))  # -32001 .. -32009 (contract A)
CORE_CODES = STANDARD | {-32040}  # unknown request id


def post(
    session: requests.Session, url: str, body: bytes, headers: dict[str, str] | None = None
) -> requests.Response:
    """POST ``body``; ``headers`` (e.g. the core's Authorization) are sent too."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    return session.post(url, data=body, headers=sent, timeout=30)


def check_reply(response: requests.Response, allowed: set[int]) -> None:
    """The HTTP reply is a well-formed JSON-RPC answer whose errors are all documented."""
    assert response.status_code in (200, 204), (response.status_code, response.text[:300])
    if response.status_code == 204:
        assert response.content == b""
        return
    payload = json.loads(response.content)  # strict: the server must emit valid JSON
    replies: list[Any] = payload if isinstance(payload, list) else [payload]
    assert replies, "an empty array must never be sent back"
    for reply in replies:
        assert reply["jsonrpc"] == "2.0" and "id" in reply
        assert ("result" in reply) != ("error" in reply), reply
        if "error" in reply:
            code = reply["error"]["code"]
            assert code in allowed, reply["error"]
            assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]


def still_serving(
    session: requests.Session, url: str, method: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": "probe", "method": method, "params": {}})
    reply = post(session, url, body.encode(), headers).json()
    assert reply["id"] == "probe" and "result" in reply, reply
