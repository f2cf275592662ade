"""Run page, live JSON, experiment page, downloads, cancel, queue and authorization (404)."""

from __future__ import annotations

import csv
import io

import pytest

from cloud.rpc_client import RpcFailure
from maosic.db.models import RequestStatus
from tests.cloud.conftest import login
from tests.cloud.helpers import add_run

RUN_ROUTES = [
    "/requests/{id}",
    "/requests/{id}/live.json",
    "/requests/{id}/experiments/1",
    "/requests/{id}/experiments.csv",
    "/requests/{id}/spectra.csv",
    "/requests/{id}/data.json",
    "/requests/{id}/stock.json",
]


@pytest.fixture
def demo_run(web_sessions, log_key) -> int:
    return add_run(web_sessions, "demo", n_experiments=3, log_key=log_key)


def test_owner_sees_every_run_route(client, demo_run):
    login(client, "demo")
    for route in RUN_ROUTES:
        reply = client.get(route.format(id=demo_run))
        assert reply.status_code == 200, route
    assert f"/requests/{demo_run}" in client.get("/").data.decode()


def test_foreign_request_is_404(app, web_sessions, demo_run, fake_core):
    client = app.test_client()
    client.post(
        "/register",
        data={"username": "mallory", "password": "0123456789", "confirm": "0123456789"},
    )
    for route in RUN_ROUTES:
        assert client.get(route.format(id=demo_run)).status_code == 404, route
    assert client.post(f"/requests/{demo_run}/cancel").status_code == 404
    assert fake_core.calls == []  # the cancel never reached the core
    assert f"/requests/{demo_run}" not in client.get("/").data.decode()


def test_staff_see_all_requests(app, demo_run):
    for who in ["operator", "admin"]:
        client = app.test_client()
        login(client, who)
        for route in RUN_ROUTES:
            assert client.get(route.format(id=demo_run)).status_code == 200, (who, route)
        index = client.get("/").data.decode()
        assert f"/requests/{demo_run}" in index and "demo" in index


def test_unknown_ids_are_404(client, demo_run):
    login(client, "admin")
    assert client.get("/requests/999999").status_code == 404
    assert client.get(f"/requests/{demo_run}/experiments/99").status_code == 404
    assert client.get("/requests/999999/live.json").get_json()["ok"] is False


def test_live_json_has_what_the_plots_need(client, demo_run):
    login(client, "demo")
    data = client.get(f"/requests/{demo_run}/live.json").get_json()
    assert data["run"]["n_done"] == 3 and data["run"]["budget"] == 10
    assert data["run"]["status"] == "running"
    assert [e["number"] for e in data["experiments"]] == [1, 2, 3]
    assert data["best_so_far"] == [[1, 0.2], [2, 0.4], [3, pytest.approx(0.6)]]
    assert data["space"] == {
        "T": {"bound": [90.0, 180.0], "dx": 0.5},
        "C": {"bound": [0.2, 1.2], "dx": 0.01},
    }
    latest = data["latest"]
    assert latest["number"] == 3
    kinds = {s["kind"]: s for s in latest["spectra"]}
    assert set(kinds) == {"absorbance", "cd"}
    cd = kinds["cd"]
    # The overlaid fit reproduces the Gaussian the CD spectrum was made of.
    peak = max(range(len(cd["value"])), key=lambda i: cd["value"][i])
    assert cd["fit"]["curve"][peak] == pytest.approx(cd["value"][peak], rel=1e-6)
    assert kinds["absorbance"]["fit"] is None


def test_experiment_page_shows_decrypted_commands(client, demo_run):
    login(client, "demo")
    page = client.get(f"/requests/{demo_run}/experiments/2").data.decode()
    assert "heater.set" in page and "setpoint_C" in page and "120.0" in page
    assert "cd_at_exciton_mdeg" in page and "455.0" in page  # features and the fitted peak


def test_experiment_page_without_key_says_encrypted(client, demo_run, log_key):
    log_key.unlink()
    login(client, "demo")
    page = client.get(f"/requests/{demo_run}/experiments/1").data.decode()
    assert "key not available" in page


def test_csv_download(client, demo_run):
    login(client, "demo")
    reply = client.get(f"/requests/{demo_run}/experiments.csv")
    assert reply.mimetype == "text/csv"
    assert "attachment" in reply.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.data.decode())))
    assert [r["number"] for r in rows] == ["1", "2", "3"]
    assert float(rows[2]["T"]) == 130.0 and float(rows[2]["reward"]) == pytest.approx(0.6)
    assert float(rows[0]["cd_at_exciton_mdeg"]) == pytest.approx(0.2)
    spectra = list(
        csv.DictReader(io.StringIO(client.get(f"/requests/{demo_run}/spectra.csv").data.decode()))
    )
    assert len(spectra) == 3 * 2 * 101
    assert {r["kind"] for r in spectra} == {"absorbance", "cd"}


def test_json_download_keeps_every_point(client, demo_run):
    login(client, "demo")
    data = client.get(f"/requests/{demo_run}/data.json").get_json()
    assert data["request"]["id"] == demo_run
    first = data["experiments"][0]
    assert first["features"] == {"cd_at_exciton_mdeg": pytest.approx(0.2)}
    assert len(first["spectra"][0]["wavelength_nm"]) == 101
    assert "curve" not in (first["spectra"][1]["fit"] or {})


def test_cancel_goes_through_the_core(client, demo_run, fake_core):
    login(client, "demo")
    reply = client.post(f"/requests/{demo_run}/cancel")
    assert reply.status_code == 302
    assert fake_core.calls[-1] == ("request.cancel", {"id": demo_run})
    assert fake_core.as_users[-1] == "demo"  # the core decides whose request it is
    fake_core.fail_with = RpcFailure(-32602, "request 1 is already done", {"field": "id"})
    client.post(f"/requests/{demo_run}/cancel")
    assert (
        "Cannot cancel: request 1 is already done"
        in client.get(f"/requests/{demo_run}").data.decode()
    )


def test_staff_cancel_acts_as_the_staff_account(client, demo_run, fake_core):
    login(client, "operator")
    client.post(f"/requests/{demo_run}/cancel")
    assert fake_core.calls[-1] == ("request.cancel", {"id": demo_run})
    assert fake_core.as_users[-1] == "operator"


def test_queue_is_fifo_and_hides_others(client, web_sessions):
    mine_running = add_run(web_sessions, "demo", 1, RequestStatus.RUNNING)
    theirs = add_run(web_sessions, "operator", 0, RequestStatus.QUEUED)
    mine_queued = add_run(web_sessions, "demo", 0, RequestStatus.QUEUED)
    add_run(web_sessions, "demo", 2, RequestStatus.DONE)
    login(client, "demo")
    rows = client.get("/queue.json").get_json()["queue"]
    assert [r["position"] for r in rows] == [0, 1, 2]
    assert [r["id"] for r in rows] == [mine_running, None, mine_queued]
    assert rows[1]["reaction"] == "another user's request"
    assert rows[0]["estimated_start_s"] == 0
    assert rows[2]["estimated_start_s"] > rows[1]["estimated_start_s"] > 0
    page = client.get("/queue").data.decode()
    assert "another user&#39;s request" in page or "another user's request" in page
    client.post("/logout")
    login(client, "admin")
    rows = client.get("/queue.json").get_json()["queue"]
    assert rows[1]["id"] == theirs and rows[1]["owner"] == "operator"


def test_live_json_revalidates_with_etag(client, demo_run, web_sessions, log_key):
    from tests.cloud.helpers import append_experiment

    login(client, "demo")
    first = client.get(f"/requests/{demo_run}/live.json")
    etag = first.headers["ETag"]
    again = client.get(f"/requests/{demo_run}/live.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    append_experiment(web_sessions, demo_run, 4, log_key)
    changed = client.get(f"/requests/{demo_run}/live.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert changed.get_json()["run"]["n_done"] == 4


def test_csv_neutralises_formulas(client, demo_run, web_sessions):
    from maosic.db.models import Experiment

    with web_sessions.begin() as session:
        session.query(Experiment).filter_by(request_id=demo_run, number=1).update(
            {"error": '=HYPERLINK("http://evil")'}
        )
    login(client, "demo")
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(f"/requests/{demo_run}/experiments.csv").data.decode())
        )
    )
    assert rows[0]["error"].startswith("'=HYPERLINK")
