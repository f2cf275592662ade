"""The simulated lab's physical state on disk: it survives a daemon restart, as hardware's does.

Why: real syringes keep their reagent, a heater board keeps heating and an arm stays where it
stopped when the daemon restarts. A simulated lab rebuilt from scratch at each start emptied its
syringes and so hid what a killed core leaves behind. With a state file the SimLab writes a
snapshot after every change of its physical state and on close, and starts from it.

Kept: each syringe's volume (a move in progress counts as finished, as the pump finishes it on its
own) and reagent, the stock bottles, the heater's block temperature, setpoint, ramp, PID state,
stability and latched trip, the arm's position (its target, if moving). Not kept: the reactor
tube's flow history (it restarts full of solvent), the cuvette's sample, valves, the clock (it
restarts at 0 s) and injected faults.

The file is JSON, replaced atomically (written beside, then renamed), so a kill leaves the old
or the new snapshot, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from hardware_interface.sim import rig

VERSION = 1
MAX_STATE_BYTES = 100_000  # a snapshot is well under 2 kB; a bigger file is not ours
_EPS_ML = 1e-4


class SimStateError(ValueError):
    """The state file cannot be read, written or does not fit this simulated lab."""


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the file with ``state``. No fsync: it is a simulation, and a process killed -9
    loses nothing the kernel already holds."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"version": VERSION, **state}, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise SimStateError(f"simulated lab state {path}: cannot be written ({exc})") from exc


def read_state(path: Path, spec: rig.RigSpec) -> dict[str, Any] | None:
    """The snapshot in ``path`` checked against the rig ``spec``; None when there is no file."""
    if not path.exists():
        return None
    try:
        if path.stat().st_size > MAX_STATE_BYTES:
            raise SimStateError(f"simulated lab state {path}: larger than {MAX_STATE_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SimStateError(f"simulated lab state {path}: cannot be read ({exc})") from exc
    try:
        _check(data, spec)
    except (KeyError, TypeError, ValueError) as exc:
        raise SimStateError(f"simulated lab state {path}: {exc}") from exc
    return data


def _number(value: Any, what: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} = {value} outside [{low}, {high}]")
    return float(value)


def _check(data: Any, spec: rig.RigSpec) -> None:
    """Raise (KeyError, TypeError or ValueError, saying what) unless ``data`` fits the rig."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} snapshot")
    if data["chemistry"] != spec.chemistry:
        raise ValueError(f"saved for the {data['chemistry']!r} rig, this lab is {spec.chemistry!r}")
    syringes = data["syringes"]
    if set(syringes) != set(spec.pump_reagents):
        rig_pumps = sorted(spec.pump_reagents)
        raise ValueError(f"pumps {sorted(syringes)} are not this rig's {rig_pumps}")
    for pump, entry in syringes.items():
        _number(entry["volume_mL"], f"{pump} volume_mL", 0.0, spec.syringe_mL + _EPS_ML)
        if entry["reagent"] is not None and entry["reagent"] not in spec.stock_mL:
            raise ValueError(f"{pump} holds unknown reagent {entry['reagent']!r}")
    stock = data["stock_mL"]
    if set(stock) != set(spec.stock_mL):
        raise ValueError(f"stock bottles {sorted(stock)} are not this rig's")
    for name, amount in stock.items():
        _number(amount, f"stock of {name}", 0.0)
    heater = data["heater"]
    for key in ("temperature_C", "ramp_setpoint_C", "integral", "power_pct"):
        _number(heater[key], f"heater {key}")
    if heater["setpoint_C"] is not None:
        _number(heater["setpoint_C"], "heater setpoint_C", rig.HEATER_MIN_C, rig.HEATER_MAX_C)
    _number(heater["ramp_C_min"], "heater ramp_C_min", 1e-9, rig.HEATER_RAMP_MAX_C_MIN)
    if len(heater["pid"]) != 3:
        raise ValueError("heater pid must be [kp, ki, kd]")
    for gain in heater["pid"]:
        _number(gain, "heater PID gain", 0.0)
    if heater["stable_for_s"] is not None:
        _number(heater["stable_for_s"], "heater stable_for_s", 0.0)
    if heater["fault"] is not None and not isinstance(heater["fault"], str):
        raise ValueError("heater fault must be a text or null")
    if data["robot"]["position"] not in rig.ROBOT_POSITIONS:
        raise ValueError(f"robot position {data['robot']['position']!r} unknown")
