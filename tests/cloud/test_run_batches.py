"""The run page shows which optimizer call (batch of ``nreq`` points) proposed each
experiment: live.json rows, the experiment table's Batch column and the CSV (issue 19)."""

from __future__ import annotations

import csv
import io

from sqlalchemy import update

from maosic.db.models import Experiment
from maosic.db.session import transaction
from tests.cloud.conftest import login
from tests.cloud.helpers import add_run


def test_batches_are_shown_per_experiment(client, web_sessions, log_key):
    run = add_run(web_sessions, "demo", n_experiments=3, log_key=log_key)
    with transaction(web_sessions) as session:  # two points from the first ask, one from the next
        for number, batch in [(1, 1), (2, 1), (3, 2)]:
            session.execute(
                update(Experiment)
                .where(Experiment.request_id == run, Experiment.number == number)
                .values(batch=batch)
            )
    login(client, "demo")
    rows = client.get(f"/requests/{run}/live.json").get_json()["experiments"]
    assert [(r["number"], r["batch"]) for r in rows] == [(1, 1), (2, 1), (3, 2)]
    page = client.get(f"/requests/{run}").data.decode()
    assert "<th>#</th><th title=" in page and ">Batch</th>" in page
    csv_text = client.get(f"/requests/{run}/experiments.csv").data.decode()
    table = csv.DictReader(io.StringIO(csv_text))
    assert [r["batch"] for r in table] == ["1", "1", "2"]


def test_runs_from_before_batches_show_none(client, web_sessions, log_key):
    run = add_run(web_sessions, "demo", n_experiments=1, log_key=log_key)
    login(client, "demo")
    rows = client.get(f"/requests/{run}/live.json").get_json()["experiments"]
    assert rows[0]["batch"] is None
