"""Small helpers for tests that talk JSON-RPC to the core over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The installation token every test stack's core is started with (MAOSIC_CORE_TOKEN).
TEST_CORE_TOKEN = "test-core-installation-token"


def rpc(url: str, method: str, *, as_user: str | None = None, **params: Any) -> Any:
    """Call the core with the installation token, acting for ``as_user`` when given."""
    headers = {"Authorization": f"Bearer {TEST_CORE_TOKEN}"}
    if as_user is not None:
        headers["X-MAOSIC-User"] = as_user
    reply = requests.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
        headers=headers,
        timeout=30,
    ).json()
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def cspbbr3_config() -> dict[str, Any]:
    return json.loads((EXAMPLES / "cspbbr3.json").read_text(encoding="utf-8"))


def wait_for(url: str, request_id: int, done: set[str], timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = rpc(url, "request.status", id=request_id)
        if status["status"] in done:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"request {request_id} still {status['status']}: {status}")
        time.sleep(0.1)
