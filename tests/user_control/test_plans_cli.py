"""Experiments people choose, from the terminal, against the whole stack (issue 21): a list of
points from a CSV file, a person's proposal beside the optimizer's suggestion, a repeat of the
best with the reproducibility it measured."""

from __future__ import annotations

import json

from tests.user_control.helpers import REPO, run, run_process

EXAMPLE = REPO / "examples" / "cspbbr3.json"
TARGET = ["--target", "max_abs_cd_at_exciton"]


def test_points_repeat_and_replicates_from_the_terminal(stack, tmp_path):
    core = ["--core-url", stack.core_url, "--user", "demo"]
    points = tmp_path / "points.csv"
    points.write_text("T,C\n120,0.5\n150,0.9\n")
    sent = run_process(
        [*core, "submit", str(EXAMPLE), "--points", str(points), *TARGET, "--watch",
         "--interval", "0.2"],
        tmp_path,
        timeout=240,
    )  # fmt: skip
    assert sent.status == 0, sent.out + sent.err
    assert "optimizer points" in sent.out and "budget 2 experiments" in sent.out
    request_id = int(sent.out.split()[1])
    shown = json.loads(run([*core, "--json", "show", str(request_id)], tmp_path).out)
    assert [e["params"] for e in shown["experiments"]] == [
        {"T": 120.0, "C": 0.5},
        {"T": 150.0, "C": 0.9},
    ]
    assert {e["chosen_by"] for e in shown["experiments"]} == {"user:demo"}
    best = max(shown["experiments"], key=lambda e: e["reward"])

    repeated = run_process(
        [*core, "repeat", str(request_id), "--n", "3", "--watch", "--interval", "0.2"],
        tmp_path,
        timeout=240,
    )
    assert repeated.status == 0, repeated.out + repeated.err
    assert "3 replicates of" in repeated.out and "(5 experiments" in repeated.out
    again = int(repeated.out.split()[1])
    text = run([*core, "replicates", str(again)], tmp_path).out
    assert f"request {request_id} experiment {best['number']} and 3 replicates: mean" in text
    assert "CV" in text and text.count(" #") == 4, text


def test_propose_beside_the_suggestion_and_bad_points(stack, tmp_path):
    core = ["--core-url", stack.core_url, "--user", "demo"]
    # a long request, so that it is still active while a person adds points
    first = run([*core, "--json", "submit", str(EXAMPLE), "--budget", "200", *TARGET], tmp_path)
    assert first.status == 0, first.err
    request_id = json.loads(first.out)["id"]
    try:
        suggestion = run([*core, "suggest", str(request_id)], tmp_path)
        assert suggestion.status == 0 and "chosen by optimizer:" in suggestion.out, suggestion.out
        proposed = run([*core, "propose", str(request_id), "T=140", "C=0.75"], tmp_path)
        assert proposed.status == 0, proposed.err
        assert "T 140, C 0.75  (user:demo)" in proposed.out, proposed.out
        outside = run([*core, "propose", str(request_id), "T=400", "C=0.75"], tmp_path)
        assert outside.status == 1
        assert "'T' = 400.0 is outside its bounds [90.0, 180.0]" in outside.err, outside.err
        typo = run([*core, "propose", str(request_id), "T:140"], tmp_path)
        assert typo.status == 2 and "write NAME=VALUE" in typo.err
        bad_csv = tmp_path / "bad.csv"
        bad_csv.write_text("T,C\n120,hot\n")
        refused = run([*core, "propose", str(request_id), "--csv", str(bad_csv)], tmp_path)
        assert refused.status == 2 and "CSV line 2, column C: 'hot'" in refused.err
    finally:
        run([*core, "cancel", str(request_id)], tmp_path)
