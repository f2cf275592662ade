"""A scripted stand-in for the core's JSON-RPC handler (contract C), for the CLI's own tests.

It speaks real JSON-RPC over HTTP through the project's :class:`Dispatcher`; each
``request.status`` call of a running request advances it by one experiment, so a watch sees
progress and then the end. The end-to-end tests against the real core live in test_requests_e2e.
"""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hardware_interface.jsonrpc import Dispatcher, RpcError


class FakeCore:
    def __init__(self, end_state: str = "done") -> None:
        self.requests: dict[int, dict[str, Any]] = {}
        self.submitted: list[dict[str, Any]] = []
        self.end_state = end_state
        self.headers: list[dict[str, str]] = []  # each call's HTTP headers (credentials)
        fake = self
        dispatcher = Dispatcher(
            {
                "request.submit": self.submit,
                "request.status": self.status,
                "request.cancel": self.cancel,
                "request.list": self.request_list,
                "queue.list": self.queue_list,
            }
        )

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.headers.append(dict(self.headers))
                reply = dispatcher.handle(body) or b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def submit(
        self,
        config: dict | str | None = None,
        formula: str | None = None,
        space: dict | None = None,
        target: dict | None = None,
        budget: int | None = None,
        optimizer: str | None = None,
        seed: int = 0,
        name: str | None = None,
    ) -> dict[str, Any]:
        owner = self.acting_user()
        self.submitted.append(
            {"config": config, "formula": formula, "space": space, "target": target,
             "budget": budget, "optimizer": optimizer, "seed": seed, "owner": owner}
        )  # fmt: skip
        if isinstance(config, dict) and "experiment" not in config:
            raise RpcError(
                -32602,
                "config: line 1, column 1: missing 'experiment'",
                {"field": "config", "line": 1, "column": 1, "message": "missing 'experiment'"},
            )
        rid = len(self.requests) + 1
        busy = any(r["status"] == "running" for r in self.requests.values())
        self.requests[rid] = {
            "id": rid,
            "seq": rid,
            "status": "queued" if busy else "running",
            "position": rid if busy else 0,
            "owner": owner,
            "reaction": (config or {}).get("name", name) if isinstance(config, dict) else name,
            "reaction_id": 1,
            "target": target or {"metric": "cd_first_exciton"},
            "optimizer": optimizer or "snobfit",
            "budget": budget or 3,
            "n_done": 0,
            "best_reward": None,
            "best_params": None,
            "current_step": None,
            "eta_s": 240.0,
            "failure_reason": None,
            "stop_reason": None,
            "created_at": "2026-11-24T01:00:00Z",
            "started_at": "2026-11-24T01:00:01Z",
            "finished_at": None,
            "experiments": [],
        }
        return {"id": rid, "seq": rid, "position": 0, "status": "queued",
                "budget": budget or 3, "optimizer": optimizer or "snobfit"}  # fmt: skip

    def status(self, id: int, experiments: bool = False) -> dict[str, Any]:
        if id not in self.requests:
            raise RpcError(-32040, f"no request {id}")
        req = self.requests[id]
        if req["status"] == "running":
            n = req["n_done"] + 1
            reward = [0.2, 0.9, 0.5, 0.7][(n - 1) % 4]
            req["experiments"].append(
                {"number": n, "params": {"T": 100.0 + 10 * n, "C": 0.4 + 0.1 * n},
                 "status": "done", "reward": reward, "error": None,
                 "started_at": "2026-11-24T01:00:02Z", "finished_at": "2026-11-24T01:00:03Z"}
            )  # fmt: skip
            req["n_done"] = n
            best = max(req["experiments"], key=lambda e: e["reward"])
            req["best_reward"], req["best_params"] = best["reward"], best["params"]
            req["eta_s"] = 120.0 * (req["budget"] - n)
            if n >= req["budget"]:
                req["status"] = self.end_state
                req["finished_at"] = "2026-11-24T01:05:00Z"
                if self.end_state == "failed":
                    req["failure_reason"] = "heater fault during experiment 2"
        out = {k: v for k, v in req.items() if k != "experiments"}
        if experiments:
            out["experiments"] = list(req["experiments"])
        return out

    def acting_user(self) -> str | None:
        """Whom the last call's credentials name: X-MAOSIC-User, or the Basic user."""
        headers = self.headers[-1] if self.headers else {}
        if headers.get("X-MAOSIC-User"):
            return headers["X-MAOSIC-User"]
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme == "Basic":
            return base64.b64decode(value).decode().partition(":")[0]
        return None

    def cancel(self, id: int) -> dict[str, Any]:
        if id not in self.requests:
            raise RpcError(-32040, f"no request {id}")
        self.requests[id]["status"] = "cancelled"
        return self.status(id)

    def request_list(self, mine: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        owner = self.acting_user() if mine else None
        rows = [self.status(i) for i in sorted(self.requests, reverse=True)]
        return [r for r in rows if owner is None or r["owner"] == owner][:limit]

    def queue_list(self) -> list[dict[str, Any]]:
        rows = [
            {k: v for k, v in r.items() if k != "experiments"}
            for r in self.requests.values()
            if r["status"] in ("queued", "running")
        ]
        for i, row in enumerate(rows):
            row["estimated_start_s"] = 300.0 * i
        return rows
