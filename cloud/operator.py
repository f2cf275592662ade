"""Operators: hardware status of the daemon and a manual control panel.

Manual commands go through an explicit table of allowed daemon methods with typed parameters
(contract A); nothing the browser sends is used as a method name unless it is in the table.
Each command is also written to the encrypted audit log (``hardware_commands``, no request).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from cloud.accounts import role_required
from cloud.context import db, web
from cloud.rpc_client import RpcFailure, RpcUnavailable
from maosic.db.crypto import LogCipher, LogKeyError
from maosic.db.models import HardwareCommand, Role

bp = Blueprint("operator", __name__, url_prefix="/operator")

# method -> {param: (type, required)}; waits are forced off so the page never blocks for minutes.
MANUAL_COMMANDS: dict[str, dict[str, tuple[type, bool]]] = {
    "system.stop": {},
    "system.reset_faults": {},
    "heater.set": {"setpoint_C": (float, True), "ramp_C_min": (float, False)},
    "heater.off": {},
    "pump.fill": {"pump": (str, True), "reagent": (str, True), "volume_mL": (float, True)},
    "pump.infuse": {"pump": (str, True), "volume_mL": (float, True), "rate_mL_min": (float, True)},
    "pump.withdraw": {
        "pump": (str, True),
        "volume_mL": (float, True),
        "rate_mL_min": (float, True),
    },
    "pump.stop": {"pump": (str, True)},
    "robot.move": {"position": (str, True)},
    "valve.set": {"valve": (str, True), "open": (bool, True)},
    "reagent.refill": {"reagent": (str, True), "added_mL": (float, True)},
}
NO_WAIT = {"heater.set": {"wait_stable": False}, "pump.infuse": {"wait": False}}
NO_WAIT["pump.withdraw"] = {"wait": False}
ROBOT_POSITIONS = ["home", "sampler", "abs", "cd", "waste"]


class CommandError(ValueError):
    """A manual command the panel refuses before sending; names the parameter."""


def _coerce(method: str, name: str, kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in {"true", "1", "on", "yes", "open"}:
            return True
        if str(raw).lower() in {"false", "0", "off", "no", "closed"}:
            return False
        raise CommandError(f"{method}: {name} must be true or false, got {raw!r}")
    if kind is float:
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"{method}: {name} must be a number, got {raw!r}") from exc
    text = str(raw).strip()
    if not text or len(text) > 64:
        raise CommandError(f"{method}: {name} must be a short non-empty text")
    return text


def build_command(method: Any, params: Any) -> dict[str, Any]:
    """Validated named params for ``method``; CommandError says what is wrong."""
    if not isinstance(method, str) or method not in MANUAL_COMMANDS:
        raise CommandError(
            f"unknown command {method!r}; allowed: {', '.join(sorted(MANUAL_COMMANDS))}"
        )
    if not isinstance(params, dict):
        raise CommandError(f"{method}: params must be an object")
    spec = MANUAL_COMMANDS[method]
    unknown = set(params) - set(spec)
    if unknown:
        raise CommandError(f"{method}: unknown parameter(s) {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        raw = params.get(name)
        if raw is None or raw == "":
            if required:
                raise CommandError(f"{method}: parameter {name} is required")
            continue
        out[name] = _coerce(method, name, kind, raw)
    out.update(NO_WAIT.get(method, {}))
    return out


def _audit(
    method: str, params: dict[str, Any], result: Any, error: RpcFailure | None, ms: float
) -> None:
    try:
        cipher = LogCipher.from_file(web().log_key_file)
    except (LogKeyError, OSError):
        return  # no usable key: the daemon still logs the command on its side
    session = db()
    session.add(
        HardwareCommand(
            method=method,
            ok=error is None,
            error_code=error.code if error else None,
            params_enc=cipher.encrypt_json(params),
            result_enc=cipher.encrypt_json(
                result if error is None else {"error": error.message, "data": error.data}
            ),
            duration_ms=ms,
        )
    )
    session.commit()


@bp.route("/hardware")
@role_required(Role.OPERATOR)
def hardware() -> str:
    return render_template(
        "operator/hardware.html", commands=MANUAL_COMMANDS, positions=ROBOT_POSITIONS
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
    """Daemon reachability, module states and faults, heater and syringe readings."""
    described, error = _safe_call("system.describe")
    if error is not None:
        return jsonify(reachable=False, error=error, url=web().hardware.url)
    status, status_error = _safe_call("system.status")
    heater, _ = _safe_call("heater.status")
    modules = (described or {}).get("modules", {})
    pumps = []
    for module_id, info in sorted(modules.items()):
        if isinstance(info, dict) and info.get("kind") == "pump":
            reading, pump_error = _safe_call("pump.status", pump=module_id)
            pumps.append(reading or {"pump": module_id, "state": "unknown", "error": pump_error})
    return jsonify(
        reachable=True,
        url=web().hardware.url,
        lab=(described or {}).get("lab"),
        simulated=(described or {}).get("simulated"),
        status=status,
        status_error=status_error,
        heater=heater,
        pumps=pumps,
        reagents=(described or {}).get("reagents", {}),
        modules={k: v.get("kind") for k, v in modules.items() if isinstance(v, dict)},
    )


@bp.route("/hardware/command", methods=["POST"])
@role_required(Role.OPERATOR)
def hardware_command() -> tuple[Response, int] | Response:
    """Send one manual command: 400 malformed, 503 daemon unreachable, else 200 with ``ok``."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify(ok=False, error='send JSON {"method": ..., "params": {...}}'), 400
    try:
        params = build_command(body.get("method"), body.get("params") or {})
    except CommandError as exc:
        return jsonify(ok=False, error=str(exc)), 400
    method = body["method"]
    start = time.perf_counter()
    try:
        result = web().hardware.call(method, **params)
    except RpcFailure as exc:
        _audit(method, params, None, exc, (time.perf_counter() - start) * 1e3)
        # HTTP 200: the page worked and the daemon answered; refusing (a limit, a fault) is a
        # normal outcome the panel shows, not a server failure.
        return jsonify(ok=False, error=exc.message, code=exc.code, data=exc.data)
    except RpcUnavailable as exc:
        return jsonify(ok=False, error=str(exc)), 503
    _audit(method, params, result, None, (time.perf_counter() - start) * 1e3)
    return jsonify(ok=True, method=method, params=params, result=result)
