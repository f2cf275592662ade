"""Terminal submission against a scripted core: arguments sent, rendering, exit statuses."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.user_control.fake_core import FakeCore
from tests.user_control.helpers import REPO, run, run_process

EXAMPLE = REPO / "examples" / "cspbbr3.json"


@pytest.fixture
def core() -> Iterator[FakeCore]:
    fake = FakeCore()
    yield fake
    fake.stop()


def cli(core: FakeCore, home: Path, *argv: str):
    return run(["--core-url", core.url, "--user", "demo", *argv], home)


def test_submit_sends_config_target_budget_and_credentials(core, tmp_path):
    result = cli(core, tmp_path, "submit", str(EXAMPLE), "--target", "cd_first_exciton",
                 "--budget", "4", "--optimizer", "random", "--seed", "7")  # fmt: skip
    assert result.status == 0, result.err
    assert result.out.strip() == (
        "request 1 queued at position 0 (budget 4 experiments, optimizer random)"
    )
    sent = core.submitted[0]
    assert sent["config"] == json.loads(EXAMPLE.read_text())
    assert sent["target"] == {"metric": "cd_first_exciton"}
    assert (sent["budget"], sent["optimizer"], sent["seed"], sent["owner"]) == (
        4,
        "random",
        7,
        "demo",
    )
    # the account travels as credentials (demo's password, from MAOSIC_PASSWORD), not a param
    assert core.headers[-1]["Authorization"].startswith("Basic ")


def test_submit_watch_shows_progress_and_ends_0_when_done(core, tmp_path):
    result = run_process(
        ["--core-url", core.url, "submit", str(EXAMPLE), "--budget", "3", "--watch",
         "--interval", "0.01"],
        tmp_path,
    )  # fmt: skip
    assert result.status == 0, result.err
    assert "request 1" in result.err and "3/3" in result.err  # the tqdm bar on stderr
    assert "request 1  DONE" in result.out
    assert "best so far: reward 0.9 at T 120, C 0.6" in result.out


def test_watch_of_a_failed_request_exits_1_with_the_reason(tmp_path):
    fake = FakeCore(end_state="failed")
    try:
        submitted = cli(fake, tmp_path, "submit", str(EXAMPLE), "--budget", "2")
        assert submitted.status == 0
        watched = cli(fake, tmp_path, "watch", "1", "--interval", "0.01")
    finally:
        fake.stop()
    assert watched.status == 1
    assert "error: request 1 ended failed: heater fault during experiment 2" in watched.err


def test_show_lists_experiments_and_marks_the_best(core, tmp_path):
    cli(core, tmp_path, "submit", str(EXAMPLE), "--budget", "3")
    for _ in range(3):
        core.status(1)
    shown = cli(core, tmp_path, "show", "1")
    assert shown.status == 0, shown.err
    rows = [line for line in shown.out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 3
    best = [r for r in rows if r.endswith(" *")]
    assert len(best) == 1 and "0.9" in best[0] and "120" in best[0]
    assert "experiments 3 / 3" in shown.out


def test_export_writes_one_row_per_experiment(core, tmp_path):
    cli(core, tmp_path, "submit", str(EXAMPLE), "--budget", "2")
    core.status(1)
    target = tmp_path / "out.csv"
    exported = cli(core, tmp_path, "export", "1", "--csv", str(target))
    assert exported.status == 0, exported.err
    rows = list(csv.DictReader(target.open()))
    assert [r["number"] for r in rows] == ["1", "2"]
    assert rows[1]["T"] == "120.0" and rows[1]["reward"] == "0.9"
    assert f"2 experiments written to {target}" in exported.out


def test_queue_requests_and_cancel(core, tmp_path):
    cli(core, tmp_path, "submit", str(EXAMPLE), "--budget", "5")
    cli(core, tmp_path, "submit", str(EXAMPLE), "--budget", "5")
    queue = cli(core, tmp_path, "queue")
    assert queue.status == 0
    assert len(queue.out.splitlines()) == 3 and "5 min 00 s" in queue.out
    cancelled = cli(core, tmp_path, "cancel", "2")
    assert cancelled.out.strip() == "request 2 cancelled"
    assert core.requests[2]["status"] == "cancelled"
    listed = cli(core, tmp_path, "requests", "--mine")
    assert "cancelled" in listed.out and len(listed.out.splitlines()) == 2


def test_core_refusals_exit_1_naming_field_and_position(core, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "flow", "name": "x"}')
    refused = cli(core, tmp_path, "submit", str(bad))
    assert refused.status == 1
    assert refused.err.startswith(
        "error: request.submit refused by the core (invalid parameters, field config, "
        "line 1 column 1): "
    )
    unknown = cli(core, tmp_path, "show", "99")
    assert unknown.status == 1
    assert (
        unknown.err
        == "error: request.status refused by the core (no such request): no request 99\n"
    )


@pytest.mark.parametrize(
    ("content", "argv", "needle"),
    [
        ('{"type": "flow",\n  "name": }', [], "line 2 column 11: not valid JSON"),
        ("[1, 2]", [], "a configuration must be a JSON object"),
        ("{}", ["--target", "{bad"], "--target: column 2: not valid JSON"),
        ("{}", ["--budget", "0"], "must be >= 1"),
        (None, [], "does not exist"),
    ],
)
def test_bad_submissions_exit_2_before_sending(core, tmp_path, content, argv, needle):
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    result = cli(core, tmp_path, "submit", str(path), *argv)
    assert result.status == 2
    assert needle in result.err
    assert core.submitted == []


def test_formula_submission_sends_its_space(core, tmp_path):
    # without --space the formula's own "# vary" lines are its space: the core judges it
    bare = cli(core, tmp_path, "submit", "--formula", "R1*SP1\n# vary T from 90 to 180")
    assert bare.status == 0, bare.err
    assert core.submitted[-1]["space"] == {}
    both = cli(core, tmp_path, "submit", str(EXAMPLE), "--formula", "R1*SP1")
    assert both.status == 2
    sent = cli(core, tmp_path, "submit", "--formula", "R1*SP1", "--space", "T=90:180:0.5",
               "--space", "C=0.2:1.2", "--budget", "2")  # fmt: skip
    assert sent.status == 0, sent.err
    assert core.submitted[-1]["space"] == {
        "T": {"bound": [90.0, 180.0], "dx": 0.5},
        "C": {"bound": [0.2, 1.2]},
    }
    bad = cli(core, tmp_path, "submit", "--formula", "x", "--space", "T=180:90")
    assert bad.status == 2 and "LOW must be below HIGH" in bad.err


def test_unreachable_core_exits_3(tmp_path):
    from tests.user_control.test_manual import closed_port_url

    url = closed_port_url()
    result = run(["--core-url", url, "--retries", "0", "queue"], tmp_path)
    assert result.status == 3
    assert result.err == f"error: cannot reach the core at {url}: connection refused\n"
