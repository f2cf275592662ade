"""What drove the result (issue 22): the run page's card, in Chromium, and who may read it.

A finished 40-experiment run over (T, C) whose reward rises with C and falls with T shows each
input's importance with its direction, the surrogate's held-out R² and the response surface; a
run with too few experiments says why there is nothing to show; another account gets a 404.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from maosic.db.models import Experiment, ExperimentStatus, Request, RequestStatus, User
from maosic.db.passwords import hash_password
from maosic.db.session import transaction
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.conftest import login as client_login
from tests.cloud.helpers import add_run, cspbbr3_reaction

pytestmark = pytest.mark.browser


def _mapped_run(sessions, n: int = 40) -> int:
    """A finished run of demo's: n points spread over the box (a Latin hypercube), reward
    0.8 C - 0.004 (T - 90) plus a little noise: C matters most and raises it, T lowers it."""
    rng = np.random.default_rng(3)
    u = (np.argsort(rng.random((2, n)), axis=1).T + rng.random((n, 2))) / n
    with transaction(sessions) as session:
        user = session.scalars(select(User).where(User.username == "demo")).one()
        reaction = cspbbr3_reaction(session)
        seq = max(session.scalars(select(Request.seq)), default=0) + 1
        request = Request(
            seq=seq, owner_id=user.id, reaction_id=reaction.id,
            target={"metric": "max_abs_cd_at_exciton"}, budget=n, optimizer="lhs",
            status=RequestStatus.DONE, n_done=n, seed=1,
        )  # fmt: skip
        session.add(request)
        session.flush()
        for i, (a, b) in enumerate(u, start=1):
            t, c = round(90 + 90 * a, 1), round(0.2 + 1.0 * b, 2)
            reward = 0.8 * c - 0.004 * (t - 90) + float(rng.normal(0, 0.01)) + 0.4
            session.add(
                Experiment(
                    request_id=request.id, number=i, params={"T": t, "C": c},
                    status=ExperimentStatus.DONE, reward=reward, loss=-reward,
                )
            )  # fmt: skip
        return request.id


def test_the_run_page_shows_what_drove_the_result(app, web_sessions):
    mapped = _mapped_run(web_sessions)
    short = add_run(web_sessions, "demo", 3, RequestStatus.DONE)
    watch = ConsoleWatch()
    with serve(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/requests/{mapped}")
        page.wait_for_function(
            "() => document.getElementById('explain').dataset.verdict !== undefined",
            timeout=120_000,  # the first explanation fits its surrogates: seconds
        )
        assert page.get_attribute("#explain", "data-verdict") == "ok"
        assert page.is_hidden("#explain-warning")
        # most important first: C, then T; the bars are drawn in that order
        assert json.loads(page.get_attribute("#plot-importance", "data-bars")) == ["C", "T"]
        rows = page.locator("#explain-factors tbody tr")
        assert rows.count() == 2
        assert rows.nth(0).inner_text().startswith("C") and "raises it" in rows.nth(0).inner_text()
        assert rows.nth(1).inner_text().startswith("T") and "lowers it" in rows.nth(1).inner_text()
        note = page.inner_text("#explain-note")
        assert "40 experiments" in note and "R² on held-out experiments" in note, note
        r2 = float(note.split("held-out experiments ")[1].split(" ")[0])
        assert r2 > 0.8, note  # a smooth, nearly linear reward is explained well
        assert int(page.get_attribute("#plot-surface", "data-cells")) > 100
        assert "C and T" in page.inner_text("#surface-title")
        screenshot(page, "run-explain")

        page.goto(f"{base}/requests/{short}")
        page.wait_for_function(
            "() => document.getElementById('explain').dataset.verdict === 'unavailable'"
        )
        assert "at least 8 are needed" in page.inner_text("#explain-note")
    assert watch.errors == []


def test_another_account_cannot_read_an_explanation(app, client, web_sessions):
    mapped = _mapped_run(web_sessions, n=10)
    with transaction(web_sessions) as session:
        session.add(User(username="alice", password_hash=hash_password("alice-password")))
    client_login(client, "alice")
    assert client.get(f"/requests/{mapped}/explain.json").status_code == 404
    owner = app.test_client()
    client_login(owner, "demo")
    reply = owner.get(f"/requests/{mapped}/explain.json")
    assert reply.status_code == 200 and reply.json["available"] is True
    assert {f["name"] for f in reply.json["factors"]} == {"T", "C"}
