"""Operators' hardware status and manual control panel, against a fake daemon."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cloud.operator import CommandError, build_command
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.db.crypto import LogCipher
from maosic.db.models import HardwareCommand
from tests.cloud.conftest import login


class FakeDaemon:
    url = "http://fake-daemon/"

    def __init__(self, down: bool = False):
        self.down = down
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.epochs: list[int | None] = []  # the lease epoch each call carried

    def call(self, method: str, *, lease_epoch: int | None = None, **params: Any) -> Any:
        self.calls.append((method, params))
        self.epochs.append(lease_epoch)
        if self.down:
            raise RpcUnavailable("connection refused")
        replies = {
            "system.describe": {
                "lab": "sim",
                "simulated": True,
                "modules": {"SP1": {"kind": "pump"}, "H1": {"kind": "heater"}},
                "reagents": {"ODE": {"stock_mL": 50}},
            },
            "system.status": {
                "ok": False,
                "clock_s": 12.0,
                "modules": {
                    "SP1": {"state": "ok", "fault": None},
                    "H1": {"state": "fault", "fault": "over-temperature"},
                },
            },
            "heater.status": {"temperature_C": 25.0, "setpoint_C": None, "stable": False},
            "pump.status": {"pump": "SP1", "volume_mL": 0.1, "capacity_mL": 0.5, "state": "ok"},
            "lease.status": {"holder": None, "epoch": 0, "expires_in_s": 0.0, "lab_uid": "u"},
        }
        if method == "heater.set" and params["setpoint_C"] > 250:
            raise RpcFailure(-32001, "setpoint above 200 °C", {"module": "H1"})
        return replies.get(method, {"done": method})


@pytest.fixture
def daemon(app) -> FakeDaemon:
    fake = FakeDaemon()
    app.extensions["maosic_web"].hardware = fake
    return fake


def test_status_json(client, daemon):
    login(client, "operator")
    data = client.get("/operator/hardware/status.json").get_json()
    assert data["reachable"] is True
    assert data["status"]["modules"]["H1"]["fault"] == "over-temperature"
    assert data["heater"]["temperature_C"] == 25.0
    assert data["pumps"] == [{"pump": "SP1", "volume_mL": 0.1, "capacity_mL": 0.5, "state": "ok"}]


def test_status_when_daemon_down(client, daemon):
    daemon.down = True
    login(client, "operator")
    data = client.get("/operator/hardware/status.json").get_json()
    assert data["reachable"] is False and "connection refused" in data["error"]
    reply = client.post("/operator/hardware/command", json={"method": "heater.off"})
    assert reply.status_code == 503


def test_manual_command_is_sent_and_audited(client, daemon, web_sessions, log_key):
    login(client, "operator")
    reply = client.post(
        "/operator/hardware/command",
        json={"method": "heater.set", "params": {"setpoint_C": "110", "ramp_C_min": ""}},
    )
    assert reply.status_code == 200 and reply.get_json()["ok"] is True
    assert daemon.calls[-1] == ("heater.set", {"setpoint_C": 110.0, "wait_stable": False})
    with web_sessions() as session:
        row = session.scalars(select(HardwareCommand)).one()
        assert row.method == "heater.set" and row.request_id is None
        # Who sent it; no lease taken, so none carried (the lab was free).
        assert row.actor == "operator:operator" and row.lease_epoch is None
        assert LogCipher.from_file(log_key).decrypt_json(row.params_enc)["setpoint_C"] == 110.0
    assert daemon.epochs[-1] is None


def test_daemon_error_is_reported(client, daemon):
    login(client, "admin")
    reply = client.post(
        "/operator/hardware/command", json={"method": "heater.set", "params": {"setpoint_C": 300}}
    )
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["ok"] is False and body["code"] == -32001 and body["data"] == {"module": "H1"}


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("system.shutdown", {}, "unknown command"),
        ("__class__", {}, "unknown command"),
        ("heater.set", {}, "setpoint_C is required"),
        ("heater.set", {"setpoint_C": "hot"}, "must be a number"),
        ("pump.stop", {"pump": "SP1", "force": 1}, "unknown parameter(s) force"),
        ("valve.set", {"valve": "V1", "open": "maybe"}, "true or false"),
        ("heater.off", [], "params must be an object"),
    ],
)
def test_bad_manual_commands_are_refused(method, params, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_command(method, params)


def test_bad_command_over_http(client, daemon):
    login(client, "operator")
    reply = client.post("/operator/hardware/command", json={"method": "eval", "params": {}})
    assert reply.status_code == 400 and "unknown command" in reply.get_json()["error"]
    assert client.post("/operator/hardware/command", data="x").status_code == 400
    assert daemon.calls == []


def test_hardware_page_renders(client, daemon):
    login(client, "operator")
    page = client.get("/operator/hardware").data.decode()
    assert "EMERGENCY STOP" in page and "hardware.js" in page
