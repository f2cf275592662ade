"""Shared helpers for the security tests: certificates made once, the lab's state snapshot."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """Import scripts/NAME.py (scripts/ is not a package) under a private module name."""
    module_name = f"_maosic_script_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def lab_state(lab: Any) -> dict[str, Any]:
    """What a command could change: syringes, stock bottles, heater setpoint, robot position."""
    return {
        "syringes": {p: lab.syringe_volume_mL(p) for p in lab.pump_ids},
        "stock": {r: lab.stock_mL(r) for r in lab.reagents},
        "setpoint_C": lab.heater_setpoint_C(),
        "busy": {p: lab.pump_busy(p) for p in lab.pump_ids},
        "robot": lab.robot_position(),
    }


ATTACK = [
    ("pump.fill", {"pump": "SP1", "reagent": "Cs-oleate", "volume_mL": 0.3}),
    ("heater.set", {"setpoint_C": 150.0, "wait_stable": False}),
    ("robot.move", {"position": "waste"}),
]
