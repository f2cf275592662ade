"""Property-based fuzzing of the two configuration loaders the language tests do not cover: the
daemon's lab file (hardware_interface.labconfig) and MAOSIC's settings (TOML file + MAOSIC_*
environment). Only the documented ConfigError may come out, naming what is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware_interface.labconfig import ConfigError as LabConfigError
from hardware_interface.labconfig import LabConfig, parse_config
from maosic.config import ConfigError, Settings, load_settings
from tests.fuzz.strategies import JSON_VALUES, SCALARS

ROOT = Path(__file__).resolve().parents[2]
LAB_FILES = [
    ROOT / "hardware_interface" / "examples" / n for n in ("lab_sim.json", "lab_real.json")
]
FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SETTING_NAMES = sorted(Settings.__dataclass_fields__)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested dicts and lists."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


@st.composite
def mutated_lab(draw: st.DrawFn) -> Any:
    data = json.loads(draw(st.sampled_from(LAB_FILES)).read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "junk-key"]))
        if action == "replace":
            parent[path[-1]] = draw(JSON_VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(SCALARS)
    return data


@FUZZ
@given(data=st.one_of(mutated_lab(), JSON_VALUES))
def test_lab_config_loader_raises_only_config_error(data):
    try:
        config = parse_config(data, "fuzz.json")
    except LabConfigError as exc:
        assert "fuzz.json" in str(exc)
    else:
        assert isinstance(config, LabConfig) and config.devices


@FUZZ
@given(
    toml_text=st.one_of(
        st.text(max_size=200),
        st.dictionaries(
            st.one_of(st.sampled_from(SETTING_NAMES), st.text(max_size=12)),
            st.one_of(
                st.integers(-(10**20), 10**20).map(str),
                st.floats().map(repr),
                st.text(max_size=20).map(json.dumps),
                st.booleans().map(lambda b: str(b).lower()),
            ),
            max_size=6,
        ).map(lambda d: "\n".join(f"{json.dumps(k)} = {v}" for k, v in d.items())),
    ),
    env=st.dictionaries(
        st.sampled_from(SETTING_NAMES).map(lambda n: "MAOSIC_" + n.upper()),
        st.text(max_size=20).filter(lambda t: "\x00" not in t),
        max_size=4,
    ),
)
def test_settings_loader_raises_only_config_error(tmp_path, toml_text, env):
    path = tmp_path / "maosic.toml"
    path.write_text(toml_text, encoding="utf-8")
    environ = {**env, "MAOSIC_INSTANCE_PATH": str(tmp_path)}
    try:
        loaded = load_settings(config_file=path, environ=environ)
    except ConfigError as exc:
        message = str(exc)
        assert str(path) in message or "environment variable MAOSIC_" in message, message
    else:
        assert isinstance(loaded, Settings)
