"""The compiled example plans run on the simulated lab's hardware daemon (contract A/B)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import requests

from hardware_interface import server  # the daemon (another part) stands in for the lab
from maosic.language import compile_config, compile_formula, load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(url: str, plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = itertools.count(1)
    results = []
    with requests.Session() as http:
        for call in plan:
            body = {"jsonrpc": "2.0", "id": next(ids), **call}
            reply = http.post(url, json=body, timeout=60).json()
            assert "error" not in reply, (call, reply)
            results.append(reply["result"])
    return results


def test_cspbbr3_formula_runs_on_the_simulated_lab() -> None:
    cfg = load_config(EXAMPLES / "cspbbr3.json")
    formula = (EXAMPLES / "cspbbr3.formula").read_text(encoding="utf-8")
    plan = compile_formula(formula, cfg).plan({"T": 130.0, "C": 0.8}, include_init=True)
    with server.start_daemon(sim=True, chemistry="cspbbr3", seed=3, watchdog_s=0) as lab:
        results = _run(lab.url, plan)
    cd = results[[c["method"] for c in plan].index("spectrometer.cd")]
    assert len(cd["cd_mdeg"]) == len(cd["wavelength_nm"]) > 100 and not cd["saturated"]
    heater = results[[c["method"] for c in plan].index("heater.set")]
    assert heater["stable"] and heater["temperature_C"] == pytest.approx(130.0, abs=1.0)


def test_cs3cu2i5_config_runs_on_the_simulated_lab() -> None:
    cfg = load_config(EXAMPLES / "cs3cu2i5.json")
    point = {"T": 140.0, "q_CuI": 150.0, "q_ZnI2": 93.0, "q_CsOA": 172.0, "q_ODE": 350.0}
    plan = compile_config(cfg).plan(point)
    with server.start_daemon(sim=True, chemistry="cs3cu2i5", seed=3, watchdog_s=0) as lab:
        results = _run(lab.url, plan)
    assert len(results[-1]["intensity"]) == len(results[-1]["wavelength_nm"])
