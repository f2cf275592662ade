"""The manual commands operators may send from the web site, with typed parameters (contract A).

Nothing the browser sends is used as a method name unless it is in :data:`MANUAL_COMMANDS`;
every parameter is coerced to its declared type before it reaches the daemon, whose own safety
limits still apply.
"""

from __future__ import annotations

from typing import Any

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
