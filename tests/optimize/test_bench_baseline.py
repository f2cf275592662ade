"""scripts/bench_optimizers.py --baseline: saved reference runs join the goal check only when
they cover exactly the wanted problems, seeds and budget."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def bench() -> Any:
    sys.path.insert(0, str(SCRIPTS))
    try:
        return importlib.import_module("bench_optimizers")
    finally:
        sys.path.remove(str(SCRIPTS))


def run(opt: str, problem: str, seed: int, budget: int, reach: int | None) -> dict[str, Any]:
    return {
        "problem": problem,
        "optimizer": opt,
        "seed": seed,
        "reach": reach,
        "curve": [0.5] * budget,
        "failures_recovered": 0,
        "replaced_duplicates": 0,
        "unhandled": [],
        "seconds": 0.1,
    }


def write(tmp_path: Path, runs: list[dict[str, Any]]) -> Path:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"runs": runs, "timings": []}))
    return path


def test_saved_runs_are_renamed_and_the_rerun_optimizer_is_skipped(bench, tmp_path) -> None:
    saved = [run(o, "branin", s, 20, 10 + s) for o in ("bayes", "hybrid") for s in (0, 1)]
    saved.append(run("bayes", "branin", 7, 20, 3))  # a seed not asked for is ignored
    out = bench.load_baseline(
        write(tmp_path, saved), ["hybrid"], {("branin", 0), ("branin", 1)}, 20
    )
    assert sorted((r["optimizer"], r["seed"]) for r in out) == [
        ("bayes (saved)", 0),
        ("bayes (saved)", 1),
    ]
    # the goal check compares the default with the saved reference
    table = bench.summarise([run("hybrid", "branin", s, 20, 30) for s in (0, 1)] + out, 20)
    assert table["branin"]["bayes (saved)"]["median_value"] == 10.5


def test_a_partial_or_different_budget_baseline_is_refused(bench, tmp_path) -> None:
    wanted = {("branin", 0), ("branin", 1)}
    partial = write(tmp_path, [run("bayes", "branin", 0, 20, 5)])
    with pytest.raises(SystemExit, match="bayes lacks 1 wanted"):
        bench.load_baseline(partial, ["hybrid"], wanted, 20)
    other_budget = write(tmp_path, [run("bayes", "branin", s, 30, 5) for s in (0, 1)])
    with pytest.raises(SystemExit, match="budget other than 20"):
        bench.load_baseline(other_budget, ["hybrid"], wanted, 20)
    batch4 = write(tmp_path, [dict(run("bayes", "branin", s, 20, 5), batch=4) for s in (0, 1)])
    with pytest.raises(SystemExit, match="batch size other than 1"):
        bench.load_baseline(batch4, ["hybrid"], wanted, 20)
    assert len(bench.load_baseline(batch4, ["hybrid"], wanted, 20, batch=4)) == 2
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="not a runs.json"):
        bench.load_baseline(tmp_path / "bad.json", ["hybrid"], wanted, 20)


def write_named(tmp_path: Path, name: str, runs: list[dict[str, Any]]) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"runs": runs, "timings": []}))
    return path


def test_report_pools_seed_sets_and_an_earlier_file_wins(bench, tmp_path) -> None:
    # a re-run default (first file) beside old references that still hold the old default's runs
    new = write_named(tmp_path, "new.json", [run("hybrid", "branin", s, 20, 8) for s in range(4)])
    old = write_named(
        tmp_path,
        "old.json",
        [run(o, "branin", s, 20, 12) for o in ("hybrid", "bayes") for s in range(4)]
        + [run("random", "branin", 0, 20, None)],  # an optimizer not asked for is left out
    )
    runs, budget = bench.load_report([new, old], ["hybrid", "bayes"], ["branin"])
    assert budget == 20
    assert sorted((r["optimizer"], r["seed"], r["reach"]) for r in runs) == sorted(
        [("hybrid", s, 8) for s in range(4)] + [("bayes", s, 12) for s in range(4)]
    )


def test_report_refuses_unequal_seeds_budgets_or_batches(bench, tmp_path) -> None:
    a = write_named(tmp_path, "a.json", [run("hybrid", "branin", s, 20, 8) for s in range(4)])
    b = write_named(tmp_path, "b.json", [run("bayes", "branin", s, 20, 8) for s in range(3)])
    with pytest.raises(SystemExit, match="branin the optimizers were run on different seeds"):
        bench.load_report([a, b], ["hybrid", "bayes"], ["branin"])
    c = write_named(tmp_path, "c.json", [run("bayes", "branin", s, 30, 8) for s in range(4)])
    with pytest.raises(SystemExit, match=r"different budgets \[20, 30\]"):
        bench.load_report([a, c], ["hybrid", "bayes"], ["branin"])
    batch4 = [dict(run("bayes", "branin", s, 20, 8), batch=4) for s in range(4)]
    d = write_named(tmp_path, "d.json", batch4)
    with pytest.raises(SystemExit, match=r"different batch sizes \[1, 4\]"):
        bench.load_report([a, d], ["hybrid", "bayes"], ["branin"])
    with pytest.raises(SystemExit, match="no saved run"):
        bench.load_report([a], ["snobfit"], ["branin"])


def test_report_prints_the_pooled_goal_check_and_plots(bench, tmp_path, capsys) -> None:
    sets = [
        write_named(
            tmp_path,
            f"s{first}.json",
            [
                run(o, "cspbbr3_cd", s, 20, reach)
                for o, reach in (("hybrid", 9), ("bayes", 15))
                for s in range(first, first + 2)
            ],
        )
        for first in (0, 2)
    ]
    out = tmp_path / "out"
    argv = ["--report", ",".join(str(p) for p in sets), "--optimizers", "hybrid,bayes"]
    assert bench.main(argv + ["--problems", "cspbbr3_cd", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "8 saved runs pooled, 4 seeds, budget 20" in text
    assert "PASS: |CD| median <= 20 (got 9)" in text
    assert "PASS: cspbbr3_cd: within 10% of the best peer (9.0 vs bayes 15.0)" in text
    assert (out / "best_so_far_cspbbr3_cd.png").stat().st_size > 0


def test_a_run_stopped_at_the_target_is_padded_and_reports_its_best(bench) -> None:
    full = bench.run_one(("branin", "random", 1, 60, 1, False))
    cut = bench.run_one(("branin", "random", 1, 60, 1, True))  # reaches at 17
    assert full["reach"] == cut["reach"] is not None
    assert cut["experiments"] == cut["reach"] < full["experiments"] == 60
    assert len(cut["curve"]) == 60 and cut["curve"][-1] == cut["curve"][cut["reach"] - 1]
    assert cut["curve"][: cut["reach"]] == full["curve"][: cut["reach"]]
    # noise-free problem: the reported best is measured exactly, its noise is 0
    assert cut["reported_noise"] < 1e-9 and cut["reported_truth"] >= -2.2


def test_space_filling_snobfit_variant_and_goal_wording(bench) -> None:
    opt = bench.build("snobfit-sf", bench._PROBLEMS["branin"].space, 0)
    assert opt.hyperparameters()["replace"] == "space_filling"
    runs = [
        dict(run(o, "deceptive_2d", s, 20, reach), stopped_at_target=False)
        for o, reach in (("hybrid", 12), ("enn", 10), ("bayes", None))
        for s in (0, 1)
    ]
    for r in runs:
        r.update(reported_truth=1.02, reported_noise=0.0, experiments=20, ask_seconds=[0.1] * 20)
    table = bench.summarise(runs, 20)
    lines = []
    bench.print = lambda *a, **k: lines.append(" ".join(map(str, a)))
    try:
        bench.check_goals(table, [], "hybrid")
    finally:
        del bench.print
    text = "\n".join(lines)
    assert "FAIL: deceptive_2d: within 10% of the best peer (12.0 vs enn 10.0)" in text
    assert "PASS: deceptive_2d: reported best within the noise of the optimum" in text
    assert "PASS: deceptive median <= 35 (got 12)" in text
