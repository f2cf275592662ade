"""What the core fills in when a submission leaves the optimizer out, or names it by object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maosic.db.models import Request
from maosic.language.config import load_config
from maosic.optimize.registry import DEFAULT_OPTIMIZER
from maosic.rpc_auth import INSTALLATION
from maosic.service import CoreService, ServiceError

ROOT = Path(__file__).resolve().parents[2]


def _config(**changes) -> dict:
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text())
    config.pop("optimizer")
    config.update(changes)
    return config


def test_a_config_without_an_optimizer_gets_the_benchmarks_default(sessions):
    assert load_config(_config()).optimizer is None
    assert "optimizer" not in load_config(_config()).to_dict()
    sub = CoreService(sessions).submit(INSTALLATION, config=_config(), budget=2)
    with sessions() as session:
        assert session.get(Request, sub["id"]).optimizer == DEFAULT_OPTIMIZER == "hybrid"


def test_the_paper_example_keeps_its_snobfit(sessions):
    config = json.loads((ROOT / "examples" / "cspbbr3.json").read_text())
    sub = CoreService(sessions).submit(INSTALLATION, config=config, budget=2)
    with sessions() as session:
        assert session.get(Request, sub["id"]).optimizer == "snobfit"


def test_an_optimizer_object_is_taken_by_its_name(sessions):
    sub = CoreService(sessions).submit(
        INSTALLATION, config=_config(optimizer={"name": "random"}), budget=2
    )
    with sessions() as session:
        assert session.get(Request, sub["id"]).optimizer == "random"


def test_an_unknown_optimizer_object_is_refused_by_name(sessions):
    with pytest.raises(ServiceError, match="unknown optimizer 'annealing'"):
        CoreService(sessions).submit(
            INSTALLATION, config=_config(optimizer={"name": "annealing"}), budget=2
        )


@pytest.mark.parametrize("bound", [5, [1, 2, 3], ["a", "b"], None])
def test_a_formula_space_with_a_malformed_bound_names_the_variable(sessions, bound):
    space = {"T": {"bound": [90, 180]}, "C": {"bound": bound}}
    with pytest.raises(ServiceError, match=r"variable 'C' needs a 'bound' \[lo, hi\] of numbers"):
        CoreService(sessions).submit(INSTALLATION, formula="H[$T, 10, $C]", space=space, budget=2)
