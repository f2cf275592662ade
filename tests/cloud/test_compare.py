"""Comparing requests (issue 21): best-so-far curves of several requests, the experiments each
needed to come within 5 % of the best, who may compare what, and ids that are not requests."""

from __future__ import annotations

import html
import json
from typing import Any

import pytest
from sqlalchemy import select

from cloud.compare import first_reaching, near_best_threshold
from maosic.db.models import (
    Experiment,
    ExperimentStatus,
    Request,
    RequestShare,
    RequestStatus,
    User,
)
from maosic.db.repository import get_or_create_reaction
from maosic.db.session import transaction
from tests.cloud.conftest import login
from tests.cloud.helpers import cspbbr3_reaction

CD = {"metric": "max_abs_cd_at_exciton"}


def make_run(
    sessions,
    owner: str,
    rewards: list[float | None],
    optimizer: str = "snobfit",
    target: dict[str, Any] | None = None,
    chosen_by: list[str | None] | None = None,
    reaction_name: str | None = None,
) -> int:
    """A finished request of ``owner`` whose experiments 1, 2, ... got ``rewards`` (None: a
    failed experiment), each chosen by ``chosen_by[i]``."""
    with transaction(sessions) as session:
        reaction = cspbbr3_reaction(session)
        if reaction_name:
            reaction, _ = get_or_create_reaction(
                session, {**reaction.config, "name": reaction_name}
            )
        user = session.scalars(select(User).where(User.username == owner)).one()
        seq = max(session.scalars(select(Request.seq)), default=0) + 1
        request = Request(
            seq=seq,
            owner_id=user.id,
            reaction_id=reaction.id,
            target=target or CD,
            budget=10,
            optimizer=optimizer,
            status=RequestStatus.DONE,
        )
        session.add(request)
        session.flush()
        for n, reward in enumerate(rewards, start=1):
            session.add(
                Experiment(
                    request_id=request.id,
                    number=n,
                    params={"T": 100.0 + n, "C": 0.5},
                    status=ExperimentStatus.DONE if reward is not None else ExperimentStatus.FAILED,
                    reward=reward,
                    loss=None if reward is None else -reward,
                    chosen_by=(chosen_by or [None] * len(rewards))[n - 1],
                )
            )
        done = [r for r in rewards if r is not None]
        request.best_reward = max(done) if done else None
        request.n_done = len(rewards)
        return request.id


@pytest.fixture
def three(web_sessions) -> tuple[int, int, int]:
    """demo's optimizer run, random run and a list of points alice chose (one failed)."""
    a = make_run(web_sessions, "demo", [0.1, 0.5, 0.3, 0.9, 1.0], "snobfit")
    b = make_run(web_sessions, "demo", [0.2, 0.2, 0.96, 0.4], "random")
    c = make_run(
        web_sessions,
        "demo",
        [0.3, None, 0.6, 0.7],
        "points",
        chosen_by=["user:alice", "user:alice", "user:alice", "confirm"],
    )
    return a, b, c


def _colleague(app, name: str = "colleague"):
    client = app.test_client()
    reply = client.post(
        "/register", data={"username": name, "password": "0123456789", "confirm": "0123456789"}
    )
    assert reply.status_code == 302
    return client


def _share(sessions, request_id: int, username: str) -> None:
    with transaction(sessions) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        session.add(RequestShare(request_id=request_id, user_id=user.id))


def _cells(page: str, request_id: int) -> dict[str, str]:
    """The comparison table's cells of one request, by class, as text."""
    row = page.split(f'id="compare-row-{request_id}"')[1].split("</tr>")[0]
    out = {}
    for chunk in row.split('<td class="')[1:]:
        name, body = chunk.split('"', 1)
        text = body.split(">", 1)[1].split("</td>")[0]
        while "<" in text:  # drop tags, keep their text
            start = text.index("<")
            text = text[:start] + text[text.index(">", start) + 1 :]
        out[name] = " ".join(html.unescape(text).split())
    return out


def test_near_best_threshold_and_first_reaching():
    assert near_best_threshold(2.0) == pytest.approx(1.9)
    # a distance reward (target_wavelength: -|error| nm): the bar stays below the best
    assert near_best_threshold(-2.0) == pytest.approx(-2.1)
    assert near_best_threshold(0.0) == 0.0
    curve = [[1, 0.1], [2, 0.5], [4, 0.97], [5, 1.0]]
    assert first_reaching(curve, 0.95) == 4
    assert first_reaching(curve, 1.5) is None
    assert first_reaching([], 0.0) is None


def test_figures_on_known_data(client, three):
    a, b, c = three
    login(client, "demo")
    reply = client.get(f"/compare?ids={a},{b},{c}")
    assert reply.status_code == 200
    page = reply.data.decode()
    assert 'id="plot-compare"' in page and 'id="compare-error"' not in page
    assert 'id="compare-notes"' not in page  # same metric, same reaction: nothing to warn of
    # best of all three: 1.0 mdeg (a's 5th); 95 % of it is 0.95, which a first reached at its
    # 5th experiment, b at its 3rd (0.96) and c never (0.7 at best)
    cells = {r: _cells(page, r) for r in three}
    assert cells[a]["to-near-best"] == "5"
    assert cells[b]["to-near-best"] == "3"
    assert cells[c]["to-near-best"] == "not reached"
    assert cells[a]["best"] == "1 mdeg" and cells[b]["best"] == "0.96 mdeg"
    assert cells[c]["best"] == "0.7 mdeg"
    assert cells[a]["n-done"] == "5 / 10" and cells[c]["n-done"] == "4 / 10"  # failed counts
    assert cells[b]["optimizer"] == "random" and cells[c]["optimizer"] == "points"
    # person-chosen points: alice's three (the confirmation replicate is not a person's)
    assert cells[c]["person-chosen"] == "3 (alice)" and cells[a]["person-chosen"] == "0"

    data = json.loads(page.split('id="compare-data">')[1].split("</script>")[0])
    assert [r["id"] for r in data["requests"]] == [a, b, c]
    assert data["requests"][0]["label"] == f"#{a} chiral CsPbBr3 nanocrystals · snobfit"
    assert data["requests"][2]["label"].endswith("· points (points chosen by alice)")


def test_json_download_of_the_curves(client, three):
    a, b, c = three
    login(client, "demo")
    reply = client.get(f"/compare.json?ids={a},{b},{c}")
    assert reply.status_code == 200
    assert reply.mimetype == "application/json"
    assert reply.headers["Content-Disposition"] == (
        f'attachment; filename="compare-{a}-{b}-{c}.json"'
    )
    data = json.loads(reply.data)
    assert data["overlay"] is True and data["notes"] == []
    assert data["best_reward_overall"] == 1.0
    assert data["near_best_threshold"] == pytest.approx(0.95)
    by_id = {r["id"]: r for r in data["requests"]}
    assert by_id[a]["best_so_far"] == [[1, 0.1], [2, 0.5], [3, 0.5], [4, 0.9], [5, 1.0]]
    assert by_id[b]["best_so_far"] == [[1, 0.2], [2, 0.2], [3, 0.96], [4, 0.96]]
    assert by_id[c]["best_so_far"] == [[1, 0.3], [3, 0.6], [4, 0.7]]  # 2 failed: no reward
    assert [by_id[i]["experiments_to_near_best"] for i in three] == [5, 3, None]
    assert [by_id[i]["reward_unit"] for i in three] == ["mdeg"] * 3
    assert by_id[c]["person_chosen"] == 3 and by_id[c]["chosen_by_people"] == ["alice"]
    assert by_id[a]["optimizer"] == "snobfit" and by_id[a]["n_done"] == 5
    # the checkboxes' form sends ids=3&ids=7: the same comparison
    again = client.get(f"/compare.json?ids={a}&ids={b}&ids={c}")
    assert json.loads(again.data) == data


def test_who_may_compare_what(app, client, web_sessions, three):
    a, b, _ = three
    theirs = make_run(web_sessions, "operator", [0.4, 0.8])
    colleague = _colleague(app)
    # a stranger: none of demo's requests, and the page says so without a 500
    reply = colleague.get(f"/compare?ids={a},{b}")
    assert reply.status_code == 404
    page = html.unescape(reply.data.decode())
    assert f"No request #{a}, #{b} that you may see" in page and 'id="plot-compare"' not in page
    assert colleague.get(f"/compare.json?ids={a},{b}").status_code == 404
    # shared with them: one of two is still a refusal naming the other ...
    _share(web_sessions, a, "colleague")
    page = html.unescape(colleague.get(f"/compare?ids={a},{b}").data.decode())
    assert f"No request #{b} that you may see" in page and f"#{a}," not in page
    # ... both: they compare them
    _share(web_sessions, b, "colleague")
    assert colleague.get(f"/compare?ids={a},{b}").status_code == 200

    login(client, "demo")
    # the owner cannot reach another user's request, nor one that does not exist: one message
    for other in (theirs, 99999):
        reply = client.get(f"/compare?ids={a},{other}")
        assert reply.status_code == 404
        assert f"No request #{other} that you may see" in html.unescape(reply.data.decode())
        reply = client.get(f"/compare.json?ids={a},{other}")
        assert reply.status_code == 404 and f"#{other}" in reply.get_json()["error"]
    # staff see every request
    staff = app.test_client()
    login(staff, "operator")
    assert staff.get(f"/compare?ids={a},{theirs}").status_code == 200
    # not logged in: the login page, not the data
    reply = app.test_client().get(f"/compare?ids={a},{b}")
    assert reply.status_code == 302 and "/login" in reply.headers["Location"]
    assert app.test_client().get(f"/compare.json?ids={a},{b}").status_code == 401


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        ("abc", "'abc' is not a request number"),
        ("1,x", "'x' is not a request number"),
        ("1,-2", "'-2' is not a request number"),
        ("1,2.5", "'2.5' is not a request number"),
        ("1,\u0663", "is not a request number"),  # an Arabic-Indic 3: int() would take it
        ("1," + "9" * 25, "is not a request number"),  # past a 64-bit row id
        ("", "Choose at least two requests"),
        ("5", "Choose at least two requests"),
        ("5,5", "Choose at least two requests"),  # the same one twice
        (",".join(str(i) for i in range(1, 10)), "Compare at most 8 requests"),
        ("1," * 300, "Compare at most 8 requests"),
    ],
)
def test_bad_ids_are_a_clear_error(client, three, ids, message):
    login(client, "demo")
    reply = client.get("/compare", query_string={"ids": ids})
    assert reply.status_code == 400
    page = html.unescape(reply.data.decode())
    assert 'id="compare-error"' in page and message in page
    assert 'id="plot-compare"' not in page
    reply = client.get("/compare.json", query_string={"ids": ids})
    assert reply.status_code == 400 and message in reply.get_json()["error"]


def test_no_ids_parameter_at_all(client):
    login(client, "demo")
    reply = client.get("/compare")
    assert reply.status_code == 400 and b"Choose at least two requests" in reply.data


def test_different_metrics_are_not_overlaid(client, web_sessions):
    cd = make_run(web_sessions, "demo", [0.2, 0.8])
    nm = make_run(
        web_sessions,
        "demo",
        [-12.0, -3.0],
        target={"metric": "target_wavelength", "wavelength_nm": 470},
    )
    login(client, "demo")
    reply = client.get(f"/compare?ids={cd},{nm}")
    assert reply.status_code == 200
    page = html.unescape(reply.data.decode())
    assert "target different metrics" in page and 'id="no-overlay"' in page
    assert 'id="plot-compare"' not in page
    assert f"#{cd} max_abs_cd_at_exciton (mdeg); #{nm} target_wavelength (nm)" in page
    assert _cells(page, cd)["best"] == "0.8 mdeg" and _cells(page, nm)["best"] == "-3 nm"
    assert _cells(page, cd)["to-near-best"] == "–"
    data = client.get(f"/compare.json?ids={cd},{nm}").get_json()
    assert data["overlay"] is False and data["near_best_threshold"] is None
    assert [r["experiments_to_near_best"] for r in data["requests"]] == [None, None]

    # one metric, another wavelength: a different quantity too
    other = make_run(
        web_sessions,
        "demo",
        [-5.0],
        target={"metric": "target_wavelength", "wavelength_nm": 520},
    )
    data = client.get(f"/compare.json?ids={nm},{other}").get_json()
    assert data["overlay"] is False and "different settings" in data["notes"][0]
    # a goal only says when to stop: the rewards are the same quantity
    goal = make_run(web_sessions, "demo", [0.5, 0.9], target={**CD, "goal": 0.9})
    data = client.get(f"/compare.json?ids={cd},{goal}").get_json()
    assert data["overlay"] is True and data["notes"] == []
    # distance rewards: within 5 % of the best (-3 nm) is -3.15 nm
    near = make_run(
        web_sessions,
        "demo",
        [-9.0, -3.1],
        target={"metric": "target_wavelength", "wavelength_nm": 470},
    )
    data = client.get(f"/compare.json?ids={nm},{near}").get_json()
    assert data["near_best_threshold"] == pytest.approx(-3.15)
    assert [r["experiments_to_near_best"] for r in data["requests"]] == [2, 2]


def test_different_reactions_are_noted_but_overlaid(client, web_sessions):
    one = make_run(web_sessions, "demo", [0.2, 0.8])
    two = make_run(web_sessions, "demo", [0.3], reaction_name="CsPbBr3, other ligand")
    login(client, "demo")
    reply = client.get(f"/compare?ids={one},{two}")
    page = html.unescape(reply.data.decode())
    assert reply.status_code == 200 and 'id="plot-compare"' in page
    assert "run different reactions (CsPbBr3, other ligand; chiral CsPbBr3 nanocrystals)" in page


def test_request_list_offers_compare(client, three):
    login(client, "demo")
    page = client.get("/").data.decode()
    assert 'id="compare-form"' in page and 'action="/compare"' in page
    assert 'id="compare-selected"' in page and "Compare selected" in page
    for request_id in three:
        assert f'name="ids" value="{request_id}"' in page
    assert "compare.js" in page
