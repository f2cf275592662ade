"""Fig. S10's configuration, exactly as the paper writes it (examples/fig_s10.json), runs a
5-experiment campaign on the default simulated lab through the core (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.rpc_helpers import rpc, wait_for

FIG_S10 = Path(__file__).resolve().parents[2] / "examples" / "fig_s10.json"


def test_fig_s10_runs_five_experiments_on_the_simulated_lab(stack):
    url = stack.core.url
    config = json.loads(FIG_S10.read_text(encoding="utf-8"))
    submitted = rpc(url, "request.submit", config=config, budget=5, seed=1)
    assert submitted["optimizer"] == "snobfit"  # the configuration's
    final = wait_for(url, submitted["id"], {"done", "failed"}, 300)
    assert final["status"] == "done" and final["n_done"] == 5, final
    assert final["n_chemistry_failures"] == 0 and final["n_lab_failures"] == 0, final
    # the paper's ["CD", ["wavelength", "peak"]]: |CD| (mdeg) at the exciton, measured
    assert final["target"]["metric"] == "max_abs_cd_at_exciton"
    assert final["best_reward"] > 0
    status = rpc(url, "request.status", id=submitted["id"], experiments=True)
    rows = status["experiments"]
    assert [r["status"] for r in rows] == ["done"] * 5
    temps = [r["params"]["temp"] for r in rows]
    assert all(90 <= t <= 180 for t in temps) and len(set(temps)) == 5
