"""Reaction configuration: loading, validation errors with positions, search space."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maosic.language import LanguageError, compile_config, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CSPBBR3 = EXAMPLES / "cspbbr3.json"


@pytest.fixture()
def base() -> dict[str, Any]:
    return json.loads(CSPBBR3.read_text(encoding="utf-8"))


def test_search_space_matches_the_paper() -> None:
    space = load_config(CSPBBR3).search_space()
    assert space.names == ["T", "C"]
    np.testing.assert_array_equal(space.lower, [90.0, 0.2])
    np.testing.assert_array_equal(space.upper, [180.0, 1.2])
    np.testing.assert_array_equal(space.resolution, [0.5, 0.01])


def test_fields_and_defaults() -> None:
    cfg = load_config(CSPBBR3)
    assert cfg.max_expts == 250 and cfg.nreq == 1 and cfg.optimizer == "snobfit"
    assert [r.name for r in cfg.reagents] == ["Cs-oleate", "PbBr2", "ODE"]
    assert cfg.defaults() == {"T": 130.0, "C": 0.8, "Q": 0.15, "C_Cs": 3.6, "t_eq": 120.0}
    assert cfg.formula is None and cfg.experiment[0] == {"code": "PUMP_INIT", "pump": "SP1"}


@pytest.mark.parametrize("how", ["path", "text", "dict"])
def test_load_from_path_text_or_dict(how: str, base: dict[str, Any]) -> None:
    data: Any = {
        "path": CSPBBR3,
        "text": CSPBBR3.read_text(encoding="utf-8"),
        "dict": base,
    }[how]
    assert load_config(data).experiment == load_config(CSPBBR3).experiment


def test_a_string_is_json_text_never_a_file_name() -> None:
    # Configurations arrive from callers; a path in a string must not open the file (issue 17).
    for text in (str(CSPBBR3), "/etc/passwd", "instance/secret_key"):
        with pytest.raises(LanguageError) as info:
            load_config(text)
        assert "not valid JSON" in str(info.value) or "JSON" in info.value.message
        assert "chiral" not in str(info.value) and "root:" not in str(info.value)


@pytest.mark.parametrize("name", ["cspbbr3.json", "cs3cu2i5.json"])
def test_to_dict_round_trips_through_json(name: str) -> None:
    cfg = load_config(EXAMPLES / name)
    again = load_config(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()


def test_formula_only_config_equals_experiment_config(base: dict[str, Any]) -> None:
    formula = (EXAMPLES / "cspbbr3.formula").read_text(encoding="utf-8")
    by_formula = dict(base, formula=formula)
    del by_formula["experiment"]
    a = load_config(by_formula)
    b = load_config(base)
    assert a.experiment == b.experiment
    assert compile_config(a).plan({"T": 100, "C": 0.3}) == compile_config(b).plan(
        {"T": 100, "C": 0.3}
    )
    both = dict(base, formula=formula)  # both given and in agreement: accepted
    assert load_config(both).formula == formula


def _mutate(base: dict[str, Any], change: Callable[[dict[str, Any]], Any]) -> str:
    data = copy.deepcopy(base)
    change(data)
    return json.dumps(data, indent=2, ensure_ascii=False)


def _line_col_of(text: str, needle: str) -> tuple[int, int]:
    """Position of the character marked by '@' in ``needle`` (the rest is context)."""
    nth = 0
    if needle.endswith("#2") or needle.endswith("#4"):
        needle, nth = needle[:-2], int(needle[-1]) - 1
    skip = needle.index("@")
    needle = needle.replace("@", "", 1)
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += skip
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# (description, mutation, text the error must point at, kind)
CONFIG_ERRORS: list[tuple[str, Callable[[dict[str, Any]], Any], str, str]] = [
    ("unknown key", lambda d: d.update(maxexpts=3), '@"maxexpts"', "config"),
    ("bound order", lambda d: d["param"]["T"].update(bound=[180, 90]), "@[\n        180", "config"),
    ("default out", lambda d: d["param"]["T"].update(default=200), "@200", "out-of-range"),
    ("dx negative", lambda d: d["param"]["C"].update(dx=-1), '"dx": @-1,', "config"),
    ("var 2", lambda d: d["param"]["C"].update(var=2), '"var": @2', "config"),
    ("bad code", lambda d: d["experiment"][0].update(code="PUMPX"), '@"PUMPX"', "instruction"),
    (
        "undefined var",
        lambda d: d["experiment"][6].update(setpoint_C="$Temp"),
        "@$Temp",
        "undefined-variable",
    ),
    ("bad expr", lambda d: d["experiment"][6].update(setpoint_C="$T +* 2"), "@* 2", "instruction"),
    (
        "unknown reagent",
        lambda d: d["experiment"][3].update(reagent="CsBr"),
        '@"CsBr"',
        "unknown-reagent",
    ),
    ("bad pump", lambda d: d["experiment"][3].update(pump="H1"), '"pump": @"H1"', "unknown-symbol"),
    ("extra arg", lambda d: d["experiment"][3].update(speed=3), '@"speed": 3', "instruction"),
    ("range", lambda d: d["experiment"][6].update(setpoint_C=400), "@400", "out-of-range"),
    (
        "dup pump",
        lambda d: d["experiment"][7]["moves"][1].update(pump="SP1"),
        '"pump": @"SP1"#4',
        "pump-conflict",
    ),
    ("max_expts", lambda d: d.update(max_expts=0), '"max_expts": @0', "config"),
    ("no reagents", lambda d: d.update(reagent=[]), "@[]", "config"),
    ("bad position", lambda d: d["init"][0].update(position="roof"), '@"roof"', "out-of-range"),
]


@pytest.mark.parametrize(("label", "change", "needle", "kind"), CONFIG_ERRORS)
def test_config_errors_point_at_the_value(
    label: str, change: Callable[[dict[str, Any]], Any], needle: str, kind: str, base
) -> None:
    text = _mutate(base, change)
    with pytest.raises(LanguageError) as info:
        load_config(text)
    err = info.value
    assert err.kind == kind, str(err)
    assert (err.line, err.column) == _line_col_of(text, needle), str(err)


def test_minimal_formula_config_as_the_core_builds_it() -> None:
    cfg = load_config(
        {
            "type": "reaction",
            "name": "formula request",
            "formula": "(R1·SP1[0.1, 0, $r] + Cs-oleate·SP2[0.1, 0, 0.05]) × H[$T]",
            "param": {
                "T": {"default": 135, "bound": [90, 180], "dx": 0.9, "var": 1},
                "r": {"default": 0.1, "bound": [0.05, 0.15], "dx": 0.001, "var": 1},
            },
        }
    )
    assert cfg.max_expts == 250 and cfg.reagents == [] and cfg.metric == ""
    plan = compile_config(cfg).plan({"T": 100, "r": 0.1})
    assert [c["params"]["reagent"] for c in plan if c["method"] == "pump.fill"] == [
        "R1", "Cs-oleate",
    ]  # fmt: skip
    assert load_config(cfg.to_dict()) == cfg


def test_invalid_json_reports_its_position() -> None:
    with pytest.raises(LanguageError) as info:
        load_config('{"name": "x",,}')
    assert (info.value.line, info.value.column, info.value.kind) == (1, 14, "config")


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(LanguageError) as info:
        load_config("[1, 2]")
    assert "object" in info.value.message


def test_missing_required_fields(base: dict[str, Any]) -> None:
    for key in ("name", "type", "param"):
        data = copy.deepcopy(base)
        del data[key]
        with pytest.raises(LanguageError) as info:
            load_config(data)
        assert key in info.value.message


def test_formula_errors_point_into_the_formula(base: dict[str, Any]) -> None:
    data = dict(base, formula="R1·SP1[0.1, 0, 0.05] × H[$Tx]")
    del data["experiment"]
    with pytest.raises(LanguageError) as info:
        load_config(data)
    assert (info.value.line, info.value.column) == (1, 26)
    assert info.value.kind == "undefined-variable" and "formula" in info.value.where


def test_formula_and_experiment_must_agree(base: dict[str, Any]) -> None:
    data = dict(base, formula="(R1·SP1[0.1, 0, 0.1]) × H[$T]")
    with pytest.raises(LanguageError) as info:
        load_config(data)
    assert "experiment.1" in info.value.message and "differs" in info.value.message


def test_missing_file_is_a_language_error(tmp_path: Path) -> None:
    with pytest.raises(LanguageError) as info:
        load_config(tmp_path / "nope.json")
    assert "nope.json" in str(info.value)


def test_non_finite_numbers_rejected(base: dict[str, Any]) -> None:
    text = json.dumps(base).replace('"default": 130.0', '"default": NaN')
    with pytest.raises(LanguageError) as info:
        load_config(text)
    assert "finite" in info.value.message


def test_constant_param_needs_no_bound_and_nothing_to_optimise_is_an_error(base) -> None:
    data = copy.deepcopy(base)
    for p in data["param"].values():
        p["var"] = 0
    with pytest.raises(LanguageError) as info:
        load_config(data)
    assert "nothing to optimise" in info.value.message


def test_expression_with_json_escapes_points_at_its_string(base: dict[str, Any]) -> None:
    text = json.dumps(base, indent=2).replace('"setpoint_C": "$T"', '"setpoint_C": "$T\\u002b1"')
    cfg = load_config(text)
    assert cfg.experiment[6]["setpoint_C"] == "$T+1"
    bad = text.replace('"setpoint_C": "$T\\u002b1"', '"setpoint_C": "$Tx\\u002b1"')
    with pytest.raises(LanguageError) as info:
        load_config(bad)
    assert (info.value.line, info.value.column) == _line_col_of(bad, '"setpoint_C": @"$Tx')
