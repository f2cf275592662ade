"""Operators: hardware status of the daemon, the lab's lease and a manual control panel.

Manual control takes the same lease as the campaigns (``cloud.lab_lease``): an operator takes
the lab (or pauses the campaign holding it and takes it), drives it with commands that carry
the lease's epoch, and gives it back. Without a lease a command runs only while nobody holds
the lab; while a campaign holds it the daemon refuses the command naming the holder, and the
page shows that refusal. Each manual call is written to the encrypted audit log with who sent
it and under which lease (``cloud.audit``); the commands allowed are in
``cloud.manual_commands``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from flask_login import current_user

from cloud import audit, lab_lease
from cloud.accounts import role_required
from cloud.context import web
from cloud.manual_commands import (
    MANUAL_COMMANDS,
    ROBOT_POSITIONS,
    CommandError,
    build_command,
)
from cloud.rpc_client import RpcFailure, RpcUnavailable
from hardware_interface.errors import LEASE_LOST
from maosic.db.models import Role

bp = Blueprint("operator", __name__, url_prefix="/operator")

__all__ = ["CommandError", "bp", "build_command"]  # tests build commands through this module

LEASE_ACTIONS = ("take", "take_over", "release")


@bp.route("/hardware")
@role_required(Role.OPERATOR)
def hardware() -> str:
    return render_template(
        "operator/hardware.html",
        commands=MANUAL_COMMANDS,
        positions=ROBOT_POSITIONS,
        manual_ttl_s=int(lab_lease.MANUAL_TTL_S),
    )


def _safe_call(method: str, **params: Any) -> tuple[Any, str | None]:
    try:
        return web().hardware.call(method, **params), None
    except RpcFailure as exc:
        return None, exc.message
    except RpcUnavailable as exc:
        return None, str(exc)


@bp.route("/hardware/status.json")
@role_required(Role.OPERATOR)
def hardware_status() -> Response:
    """Daemon reachability, module states and faults, heater and syringe readings, the lease."""
    hardware = web().hardware
    described, error = _safe_call("system.describe")
    if error is not None:
        return jsonify(reachable=False, error=error, url=hardware.url)
    status, status_error = _safe_call("system.status")
    heater, _ = _safe_call("heater.status")
    lease_status, lease_error = _safe_call("lease.status")
    modules = (described or {}).get("modules", {})
    pumps = []
    for module_id, info in sorted(modules.items()):
        if isinstance(info, dict) and info.get("kind") == "pump":
            reading, pump_error = _safe_call("pump.status", pump=module_id)
            pumps.append(reading or {"pump": module_id, "state": "unknown", "error": pump_error})
    return jsonify(
        reachable=True,
        url=hardware.url,
        lab=(described or {}).get("lab"),
        simulated=(described or {}).get("simulated"),
        status=status,
        status_error=status_error,
        heater=heater,
        pumps=pumps,
        reagents=(described or {}).get("reagents", {}),
        modules={k: v.get("kind") for k, v in modules.items() if isinstance(v, dict)},
        lease=lab_lease.view(lease_status, current_user.username, hardware.url),
        lease_error=lease_error,
    )


def _send(method: str, params: dict[str, Any], epoch: int | None) -> tuple[Any, RpcFailure | None]:
    """Send one call as the current operator under ``epoch`` and audit it.

    Returns (result, None) or (None, the daemon's refusal); RpcUnavailable propagates (nothing
    reached the daemon, or its answer was lost: there is no outcome to log).
    """
    call = audit.ManualCall(
        actor=lab_lease.holder_for(current_user.username),
        lease_epoch=epoch,
        method=method,
        params=params,
        sent_at=time.time(),
    )
    start = time.perf_counter()
    try:
        result = web().hardware.call(method, lease_epoch=epoch, **params)
    except RpcFailure as exc:
        audit.record(call, None, exc, (time.perf_counter() - start) * 1e3)
        return None, exc
    if method == "lease.acquire" and isinstance(result, dict):
        # Logged under the lease it granted: the row opens that manual session in the log.
        call = dataclasses.replace(call, lease_epoch=result.get("epoch"))
    audit.record(call, result, None, (time.perf_counter() - start) * 1e3)
    return result, None


def _refused(exc: RpcFailure, **extra: Any) -> Response:
    # HTTP 200: the page worked and the daemon answered; a refusal (a limit, a fault, the lab
    # leased to someone else) is a normal outcome the panel shows, not a server failure.
    return jsonify(ok=False, error=exc.message, code=exc.code, data=exc.data, **extra)


@bp.route("/hardware/lease", methods=["POST"])
@role_required(Role.OPERATOR)
def hardware_lease() -> tuple[Response, int] | Response:
    """``{"action": "take" | "take_over" | "release"}``: take the lab (take_over pre-empts the
    holder, e.g. pauses a campaign) or give it back. 400 malformed, 503 daemon unreachable, else
    200 with ``ok``; a refusal names the holder."""
    body = request.get_json(silent=True)
    action = body.get("action") if isinstance(body, dict) else None
    if action not in LEASE_ACTIONS:
        return jsonify(ok=False, error=f'send JSON {{"action": one of {LEASE_ACTIONS}}}'), 400
    hardware = web().hardware
    try:
        if action == "release":
            grant = lab_lease.remembered(hardware.url)
            if grant is None:
                return jsonify(ok=False, error="you do not hold the lab's lease")
            released, refusal = _send("lease.release", {"epoch": grant.epoch}, grant.epoch)
            # The daemon answered: whatever it said, this session holds the lab no more (kept
            # when it did not answer, so that the operator can try again).
            lab_lease.forget()
            if refusal is not None:
                return _refused(refusal)
            return jsonify(ok=True, action=action, lease=released)
        params = {
            "holder": lab_lease.holder_for(current_user.username),
            "ttl_s": lab_lease.MANUAL_TTL_S,
            "take": action == "take_over",
        }
        granted, refusal = _send("lease.acquire", params, None)
    except RpcUnavailable as exc:
        return jsonify(ok=False, error=str(exc)), 503
    if refusal is not None:
        return _refused(refusal)
    lab_lease.remember(
        lab_lease.Grant(
            int(granted["epoch"]), params["holder"], hardware.url, granted.get("lab_uid")
        )
    )
    return jsonify(
        ok=True,
        action=action,
        lease=granted,
        recovered=granted.get("recovered") or [],
        took_over=granted.get("took_over"),
    )


@bp.route("/hardware/command", methods=["POST"])
@role_required(Role.OPERATOR)
def hardware_command() -> tuple[Response, int] | Response:
    """Send one manual command: 400 malformed, 503 daemon unreachable, else 200 with ``ok``.

    When this operator holds the lab, the lease is renewed for another manual TTL first and
    the command carries its epoch; a lease taken over meanwhile is refused before anything is
    sent, naming who holds the lab now."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(ok=False, error='send JSON {"method": ..., "params": {...}}'), 400
    try:
        params = build_command(body.get("method"), body.get("params") or {})
    except CommandError as exc:
        return jsonify(ok=False, error=str(exc)), 400
    method = body["method"]
    hardware = web().hardware
    grant = lab_lease.remembered(hardware.url)
    try:
        if grant is not None:
            try:
                lab_lease.renew(hardware, grant)
            except RpcFailure as exc:
                lab_lease.forget()
                return _refused(exc, lease_lost=True)
            except lab_lease.LeaseGone as exc:
                lab_lease.forget()
                return jsonify(ok=False, error=str(exc), code=LEASE_LOST, lease_lost=True)
        result, refusal = _send(method, params, grant.epoch if grant else None)
    except RpcUnavailable as exc:
        return jsonify(ok=False, error=str(exc)), 503
    if refusal is not None:
        lost = refusal.code == LEASE_LOST
        if lost:
            lab_lease.forget()
        return _refused(refusal, lease_lost=lost)
    return jsonify(ok=True, method=method, params=params, result=result)
