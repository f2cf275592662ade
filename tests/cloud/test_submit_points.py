"""The form's "who chooses the experiments" and goal fields (issue 21): a list of points as a
CSV table or file, a generated design, a goal confirmed by replicates; what reaches the core's
request.submit, and the errors that name the line."""

from __future__ import annotations

import io

from tests.cloud.conftest import login
from tests.cloud.test_submit import _form, _reaction_id


def _stored(web_sessions, **extra):
    return _form(source="stored", reaction_id=str(_reaction_id(web_sessions)), **extra)


def test_a_table_of_points_is_sent_as_points(client, web_sessions, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_stored(web_sessions, plan="points", points_text="T,C\n120,0.5\n150,0.9\n"),
    )
    assert reply.status_code == 302, reply.data.decode()[:2000]
    _, params = fake_core.calls[-1]
    assert params["points"] == [{"T": 120.0, "C": 0.5}, {"T": 150.0, "C": 0.9}]
    assert "design" not in params


def test_a_csv_file_of_points_wins_over_the_table(client, web_sessions, fake_core):
    login(client, "demo")
    data = _stored(web_sessions, plan="points", points_text="T,C\n100,0.3\n")
    data["points_file"] = (io.BytesIO(b"C,T\n0.4,110\n"), "points.csv")
    reply = client.post("/requests/new", data=data, content_type="multipart/form-data")
    assert reply.status_code == 302
    assert fake_core.calls[-1][1]["points"] == [{"C": 0.4, "T": 110.0}]


def test_a_design_and_a_confirmed_goal(client, web_sessions, fake_core):
    login(client, "demo")
    reply = client.post(
        "/requests/new",
        data=_stored(
            web_sessions, plan="one_factor_at_a_time", levels="5", goal="2.5", confirm="3"
        ),
    )
    assert reply.status_code == 302
    _, params = fake_core.calls[-1]
    assert params["design"] == {"kind": "one_factor_at_a_time", "levels": 5}
    assert params["target"] == {"metric": "cd_first_exciton", "goal": 2.5, "confirm": 3}


def test_errors_name_the_line_and_keep_the_form(client, web_sessions, fake_core):
    login(client, "demo")
    page = client.post(
        "/requests/new", data=_stored(web_sessions, plan="points", points_text="T,C\n120,hot\n")
    )
    assert page.status_code == 400
    text = page.data.decode()
    assert "points: CSV line 2, column C: &#39;hot&#39; is not a number" in text
    assert "120,hot" in text  # the table is kept for the user to fix
    empty = client.post("/requests/new", data=_stored(web_sessions, plan="points"))
    assert "give the points" in empty.data.decode()
    goal_only = client.post("/requests/new", data=_stored(web_sessions, metric="", goal="1"))
    assert "choose a target to set a goal" in goal_only.data.decode()
    assert "request.submit" not in [m for m, _ in fake_core.calls]  # nothing was submitted


def test_a_target_as_json_and_its_errors(client, web_sessions, fake_core):
    login(client, "demo")
    target = '{"metric": "max_plqy", "calibration": {"intercept": 1.5, "slope": 9.7}}'
    reply = client.post("/requests/new", data=_stored(web_sessions, target_json=target, goal="30"))
    assert reply.status_code == 302
    assert fake_core.calls[-1][1]["target"] == {
        "metric": "max_plqy",
        "calibration": {"intercept": 1.5, "slope": 9.7},
        "goal": 30,
    }
    for bad, message in (
        ("{metric: 1}", "target JSON: Expecting property name"),
        ('{"metric": "max_plqy", "goal": NaN}', "target JSON: NaN is not a number JSON allows"),
        ('["max_plqy"]', "target JSON: must be an object"),
    ):
        page = client.post("/requests/new", data=_stored(web_sessions, target_json=bad))
        assert page.status_code == 400 and message in page.data.decode(), message
    # the calibration page's link fills the field
    shown = client.get("/requests/new?target=" + target).data.decode()
    assert "max_plqy" in shown and "calibration" in shown
