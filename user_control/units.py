"""Showing values with their units.

The daemon and the core put units in field names (``volume_mL``, ``setpoint_C``,
``rate_mL_min``, ``clock_s``); the suffix table below turns such a key into a label and a unit,
so every value a person sees carries its unit without a per-field formatting rule.
"""

from __future__ import annotations

import math
from typing import Any

# Longest suffixes first so "_mL_min" wins over "_min".
SUFFIX_UNITS: tuple[tuple[str, str, int], ...] = (
    ("_mL_min", "mL/min", 3),
    ("_C_min", "°C/min", 1),
    ("_mmol_mL", "mmol/mL", 3),
    ("_mL", "mL", 3),
    ("_uL", "µL", 1),
    ("_C", "°C", 1),
    ("_K", "K", 1),
    ("_pct", "%", 0),
    ("_ms", "ms", 0),
    ("_s", "s", 1),
    ("_min", "min", 1),
    ("_nm", "nm", 1),
    ("_mdeg", "mdeg", 3),
    ("_W", "W", 1),
)


def split_unit(key: str) -> tuple[str, str, int]:
    """``"rate_mL_min"`` -> (``"rate"``, ``"mL/min"``, decimals); no known suffix: no unit."""
    for suffix, unit, decimals in SUFFIX_UNITS:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], unit, decimals
    return key, "", 3


def number(value: float, decimals: int) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{decimals}f}"


def with_unit(value: Any, unit: str, decimals: int = 3) -> str:
    """``130.0 °C``; ``None`` shows as ``off``-like ``-``; booleans as yes/no."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        text = number(value, decimals)
        return f"{text} {unit}" if unit else text
    return str(value)


def field(key: str, value: Any) -> str:
    """One ``label value unit`` item, e.g. ``volume 0.400 mL``."""
    label, unit, decimals = split_unit(key)
    label = label.replace("_", " ")
    if isinstance(value, list | tuple):
        shown = ", ".join(with_unit(v, unit, decimals) for v in value)
        return f"{label} [{shown}]"
    if isinstance(value, dict):
        inner = ", ".join(field(k, v) for k, v in value.items())
        return f"{label} {{{inner}}}"
    return f"{label} {with_unit(value, unit, decimals)}"


def fields(data: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    """All items of ``data`` but ``skip``, two spaces apart."""
    return "  ".join(field(k, v) for k, v in data.items() if k not in skip)


def duration(seconds: float | None) -> str:
    """``95`` -> ``1 min 35 s``; for ETAs and queue estimates."""
    if seconds is None:
        return "-"
    seconds = max(float(seconds), 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
