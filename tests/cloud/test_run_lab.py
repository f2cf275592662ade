"""The run page's lab facts: failures by kind, live, and the low-stock warning from the daemon.

Failures: chemistry failures (experiments failed, counted against the budget) and experiments
lost to the lab (``requests.n_lab_failures``: redone, not counted). Stock: the daemon's ledger
(``reagent.stock``) against what the request's remaining experiments need, per experiment as
the core's resource check computes it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from cloud import stock
from maosic.db.models import Experiment, ExperimentStatus, Lab, Request, RequestStatus
from maosic.db.session import transaction
from maosic.resources import experiments_covered
from tests.cloud.conftest import login
from tests.cloud.helpers import add_run


def _mark(sessions, request_id: int, number: int, status: ExperimentStatus, kind: str) -> None:
    with transaction(sessions) as session:
        session.execute(
            update(Experiment)
            .where(Experiment.request_id == request_id, Experiment.number == number)
            .values(status=status, failure_kind=kind, error=f"{kind} failure", reward=None)
        )


def test_failures_by_kind_are_shown_and_live(client, web_sessions):
    run_id = add_run(web_sessions, "demo", n_experiments=4)
    _mark(web_sessions, run_id, 2, ExperimentStatus.FAILED, "chemistry")
    _mark(web_sessions, run_id, 3, ExperimentStatus.ABORTED, "lab")
    with transaction(web_sessions) as session:
        session.get(Request, run_id).n_lab_failures = 1
    login(client, "demo")
    page = client.get(f"/requests/{run_id}").data.decode()
    assert 'id="n-chem-failures">1<' in page and 'id="n-lab-failures">1<' in page
    first = client.get(f"/requests/{run_id}/live.json")
    run = first.get_json()["run"]
    assert run["n_chemistry_failures"] == 1 and run["n_lab_failures"] == 1
    assert run["n_done"] == 3  # done + failed count against the budget; the lab's loss does not
    rows = {e["number"]: e for e in first.get_json()["experiments"]}
    assert rows[3]["failure_kind"] == "lab" and rows[2]["failure_kind"] == "chemistry"
    # Another loss to the lab (counter only): the page's poll must not get a stale 304.
    etag = first.headers["ETag"]
    with transaction(web_sessions) as session:
        session.get(Request, run_id).n_lab_failures = 2
    again = client.get(f"/requests/{run_id}/live.json", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.get_json()["run"]["n_lab_failures"] == 2


def test_index_counts_chemistry_failures_per_request(app, web_sessions):
    first = add_run(web_sessions, "demo", n_experiments=3)
    second = add_run(web_sessions, "demo", n_experiments=2)
    _mark(web_sessions, first, 1, ExperimentStatus.FAILED, "chemistry")
    _mark(web_sessions, first, 2, ExperimentStatus.FAILED, "chemistry")
    with app.test_request_context():
        from cloud import rundata
        from cloud.context import db

        got = {
            s["id"]: (s["n_done"], s["n_chemistry_failures"])
            for s in rundata.summaries([db().get(Request, first), db().get(Request, second)])
        }
    assert got == {first: (3, 2), second: (2, 0)}


def test_covered_matches_the_cores_rounding():
    # 300 experiments of 1/15 mL fit in 20 mL (the compiler rounds volumes to 12 digits).
    assert experiments_covered(20.0, 0.066666666667) == 300
    assert experiments_covered(0.5, 0.133333333333) == 3
    assert experiments_covered(-1.0, 0.1) == 0
    found = stock.shortfalls({"A": 0.1, "B": 0.2, "C": 0.1}, {"A": 5.0, "B": 0.5}, 7)
    assert [(s.reagent, s.covers, s.remaining) for s in found] == [("B", 2, 7)]
    assert found[0].as_dict()["needed_mL"] == pytest.approx(1.4)
    assert stock.shortfalls({"A": 0.1}, {"A": 0.0}, 0) == []  # nothing left to run


def _stock(client, run_id: int) -> dict:
    reply = client.get(f"/requests/{run_id}/stock.json")
    assert reply.status_code == 200
    return reply.get_json()


def test_low_stock_warning_names_the_reagent_and_what_it_covers(lab_app, web_sessions, sim_daemon):
    run_id = add_run(web_sessions, "demo", n_experiments=3)  # budget 10: 7 to go
    client = lab_app.test_client()
    login(client, "demo")
    plenty = _stock(client, run_id)
    assert plenty == {"active": True, "known": True, "remaining": 7, "warnings": []}
    with sim_daemon.daemon.ledger_lock:
        sim_daemon.daemon.stock_mL["PbBr2"] = 0.5  # 0.133 mL per experiment: 3 more
    lab_app.extensions["maosic_web"].stock_cache.clear()  # as STOCK_TTL_S passing
    report = _stock(client, run_id)
    assert report["known"] is True
    [warning] = report["warnings"]
    assert warning["reagent"] == "PbBr2" and warning["covers"] == 3
    assert warning["remaining"] == 7 and warning["stock_mL"] == pytest.approx(0.5)
    assert warning["per_experiment_mL"] == pytest.approx(2 / 15)
    # A refill is seen without any database change (hence not part of live.json's 304s).
    with sim_daemon.daemon.ledger_lock:
        sim_daemon.daemon.stock_mL["PbBr2"] = 20.0
    lab_app.extensions["maosic_web"].stock_cache.clear()
    assert _stock(client, run_id)["warnings"] == []


def test_stock_answer_is_cached_for_all_pages(lab_app, web_sessions, sim_daemon):
    run_id = add_run(web_sessions, "demo", n_experiments=3)
    client = lab_app.test_client()
    login(client, "demo")
    assert _stock(client, run_id)["warnings"] == []
    with sim_daemon.daemon.ledger_lock:
        sim_daemon.daemon.stock_mL["PbBr2"] = 0.5
    assert _stock(client, run_id)["warnings"] == []  # within STOCK_TTL_S: the cached ledger


def test_daemon_down_means_stock_unknown_and_the_page_still_works(client, web_sessions):
    run_id = add_run(web_sessions, "demo", n_experiments=3)  # app's daemon: a closed port
    login(client, "demo")
    assert _stock(client, run_id) == {
        "active": True,
        "known": False,
        "remaining": 7,
        "warnings": [],
    }
    assert client.get(f"/requests/{run_id}").status_code == 200
    assert client.get(f"/requests/{run_id}/live.json").status_code == 200


def test_finished_request_has_no_stock_question(lab_app, web_sessions):
    run_id = add_run(web_sessions, "demo", n_experiments=3, status=RequestStatus.DONE)
    client = lab_app.test_client()
    login(client, "demo")
    assert _stock(client, run_id) == {"active": False, "known": False, "warnings": []}


def test_request_on_another_lab_is_not_judged_by_this_daemon(lab_app, web_sessions, sim_daemon):
    run_id = add_run(web_sessions, "demo", n_experiments=3)
    with transaction(web_sessions) as session:
        lab = Lab(name="far", url="https://far-lab.example:8888/")
        session.add(lab)
        session.flush()
        session.get(Request, run_id).lab_id = lab.id
    with sim_daemon.daemon.ledger_lock:
        sim_daemon.daemon.stock_mL["PbBr2"] = 0.0
    client = lab_app.test_client()
    login(client, "demo")
    assert _stock(client, run_id)["known"] is False
