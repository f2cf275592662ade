"""The CLI against the whole stack: real daemon on the simulated lab, real core and worker."""

from __future__ import annotations

import csv
import json

import pytest

from tests.user_control.helpers import REPO, run, run_process

EXAMPLE = REPO / "examples" / "cspbbr3.json"


def test_manual_commands_reach_the_stacks_lab(stack, tmp_path):
    hw = ["--hardware-url", stack.hardware_url]
    filled = run_process([*hw, "pump", "SP1", "fill", "R1", "0.4"], tmp_path)
    assert filled.status == 0, filled.err
    assert stack.daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.4, abs=1e-6)
    heated = run([*hw, "heater", "set", "130", "--ramp", "10"], tmp_path)
    assert heated.status == 0, heated.err
    assert stack.daemon.lab.heater_setpoint_C() == pytest.approx(130.0)


def test_submit_watch_show_and_export_a_real_campaign(stack, tmp_path):
    core = ["--core-url", stack.core_url, "--user", "demo"]
    submitted = run_process(
        [*core, "submit", str(EXAMPLE), "--budget", "2", "--optimizer", "random",
         "--target", "max_abs_cd_at_exciton", "--watch", "--interval", "0.2"],
        tmp_path,
        timeout=240,
    )  # fmt: skip
    assert submitted.status == 0, submitted.out + submitted.err
    assert "DONE" in submitted.out
    request_id = int(submitted.out.split()[1])
    shown = run([*core, "--json", "show", str(request_id)], tmp_path)
    info = json.loads(shown.out)
    assert info["status"] == "done" and info["owner"] == "demo"
    assert len(info["experiments"]) == 2
    text = run([*core, "show", str(request_id)], tmp_path).out
    assert text.count(" done ") >= 2 and "best so far: reward" in text
    target = tmp_path / "experiments.csv"
    exported = run([*core, "export", str(request_id), "--csv", str(target)], tmp_path)
    assert exported.status == 0, exported.err
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == 2
    assert all(90.0 <= float(r["T"]) <= 180.0 and 0.2 <= float(r["C"]) <= 1.2 for r in rows)
    assert stack.daemon.lab.clock.now() > 0


def test_queue_and_cancel_on_the_real_core(stack, tmp_path):
    core = ["--core-url", stack.core_url, "--user", "demo"]
    first = run(
        [
            *core,
            "--json",
            "submit",
            str(EXAMPLE),
            "--budget",
            "200",
            "--target",
            "max_abs_cd_at_exciton",
        ],
        tmp_path,
    )
    second = run(
        [
            *core,
            "--json",
            "submit",
            str(EXAMPLE),
            "--budget",
            "200",
            "--target",
            "max_abs_cd_at_exciton",
        ],
        tmp_path,
    )
    assert first.status == 0 and second.status == 0, first.err + second.err
    ids = [json.loads(first.out)["id"], json.loads(second.out)["id"]]
    queue = run([*core, "queue"], tmp_path)
    assert queue.status == 0
    # the id is the second column ("pos id status ..."); a position may equal an id
    listed = [line.split()[1] for line in queue.out.splitlines()[1:]]
    assert sorted(listed) == sorted(str(i) for i in ids), queue.out
    queued = run([*core, "cancel", str(ids[1])], tmp_path)
    assert queued.status == 0, queued.err
    assert queued.out.strip() == f"request {ids[1]} cancelled"
    running = run([*core, "cancel", str(ids[0]), "--wait", "--interval", "0.1"], tmp_path)
    assert running.status == 0, running.err
    assert running.out.strip() == f"request {ids[0]} cancelled"
    again = run([*core, "cancel", str(ids[0])], tmp_path)
    assert again.status == 1 and "already cancelled" in again.err
    mine = run([*core, "requests", "--mine"], tmp_path)
    assert mine.out.count("cancelled") == 2


def test_real_core_refusals(stack, tmp_path):
    anonymous = run(["--core-url", stack.core_url, "queue"], tmp_path)
    assert anonymous.status == 1 and "authentication required" in anonymous.err
    core = ["--core-url", stack.core_url, "--user", "demo"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "flow", "name": "no experiment", "param": {}}))
    refused = run([*core, "submit", str(bad)], tmp_path)
    assert refused.status == 1
    assert "request.submit refused by the core (invalid parameters, field config" in refused.err
    unknown = run([*core, "show", "4242"], tmp_path)
    assert unknown.status == 1 and "(no such request)" in unknown.err
    nobody = run(
        [*core, "--user", "nobody", "submit", str(EXAMPLE), "--target", "max_abs_cd_at_exciton"],
        tmp_path,
    )
    assert nobody.status == 1 and "wrong username or password" in nobody.err
    # the operator's request does not exist for demo, whose password is in MAOSIC_PASSWORD
    operator = ["--core-url", stack.core_url, "--user", "operator", "--json"]
    theirs = run([*operator, "submit", str(EXAMPLE), "--budget", "1"], tmp_path,
                 MAOSIC_PASSWORD="operator-password")  # fmt: skip
    assert theirs.status == 0, theirs.err
    their_id = str(json.loads(theirs.out)["id"])
    for command in (["show", their_id], ["cancel", their_id]):
        hidden = run([*core, *command], tmp_path)
        assert hidden.status == 1 and "(no such request)" in hidden.err


def test_show_explain_says_what_drove_the_result(stack, tmp_path):
    core = ["--core-url", stack.core_url, "--user", "demo"]
    submitted = run_process(
        [*core, "submit", str(EXAMPLE), "--budget", "10", "--optimizer", "lhs", "--watch",
         "--interval", "0.2"],
        tmp_path,
        timeout=300,
    )  # fmt: skip
    assert submitted.status == 0, submitted.out + submitted.err
    request_id = int(submitted.out.split()[1])
    text = run([*core, "show", str(request_id), "--explain"], tmp_path).out
    assert "what drove the result" in text, text
    rows = [line.split() for line in text.splitlines() if line.strip().split(" ")[0] in ("T", "C")]
    assert {row[0] for row in rows} == {"T", "C"}
    assert all(("raises" in row or "lowers" in row) for row in rows), rows
    assert "held-out experiments" in text and "verdict:" in text
    info = json.loads(run([*core, "--json", "show", str(request_id), "--explain"], tmp_path).out)
    found = info["explanation"]
    assert found["available"] is True and found["n"] == 10
    assert {f["name"] for f in found["factors"]} == {"T", "C"}
    # another account may not read it
    other = run(
        ["--core-url", stack.core_url, "--user", "admin", "show", str(request_id), "--explain"],
        tmp_path,
    )
    assert other.status != 0
