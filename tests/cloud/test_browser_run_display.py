"""What the run page, the request list and the queue say (issue 20, items 9 and 11), in Chromium.

Time left behind a long run and on which clock; the best-so-far legend clear of the plot; a
one-variable run drawn as reward against its variable; rewards with their unit; times in the
reader's own time zone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from maosic.db.models import Experiment, Request, RequestStatus, User, utcnow
from maosic.db.repository import get_or_create_reaction
from maosic.db.session import transaction
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.helpers import _add_experiment, add_run, cspbbr3_reaction

pytestmark = pytest.mark.browser

SUBMITTED = datetime(2026, 3, 1, 22, 30, 5)  # UTC: 07:30 the next morning in Tokyo
DRAWN = "(id) => Number(document.getElementById(id).dataset.points) > 0"  # a plot has data
WALL_S, LAB_S = 2.0, 300.0  # a simulated lab: 2 s of waiting, 5 min on its clock


def _simulated_long_run(sessions) -> tuple[int, int]:
    """demo's 250-experiment run, 50 done at WALL_S apart (LAB_S each on the lab's clock),
    and demo's 10-experiment request queued behind it."""
    running = add_run(sessions, "demo", 50, RequestStatus.RUNNING)
    queued = add_run(sessions, "demo", 0, RequestStatus.QUEUED)
    with transaction(sessions) as session:
        request = session.get(Request, running)
        request.budget, request.created_at = 250, SUBMITTED
        request.target = {"metric": "max_abs_cd_at_exciton"}
        request.started_at = SUBMITTED + timedelta(minutes=1)
        end = utcnow()
        for e in session.scalars(select(Experiment).where(Experiment.request_id == running)):
            e.finished_at = end - timedelta(seconds=WALL_S * (50 - e.number))
            e.started_at = e.finished_at - timedelta(seconds=0.5 * WALL_S)
            e.lab_time_s = LAB_S
        behind = session.get(Request, queued)
        behind.target = {"metric": "max_abs_cd_at_exciton"}
    return running, queued


def _one_variable_run(sessions) -> int:
    """A finished run of demo's that searched T alone (C fixed)."""
    with transaction(sessions) as session:
        config = dict(cspbbr3_reaction(session).config)
        config["param"] = {**config["param"], "C": {**config["param"]["C"], "var": 0}}
        config["name"] = "CsPbBr3, T only"
        reaction, _ = get_or_create_reaction(session, config)
        user = session.scalars(select(User).where(User.username == "demo")).one()
        seq = max(session.scalars(select(Request.seq))) + 1
        request = Request(
            seq=seq,
            owner_id=user.id,
            reaction_id=reaction.id,
            target={"metric": "max_abs_cd_at_exciton"},
            budget=5,
            optimizer="snobfit",
            status=RequestStatus.DONE,
        )
        session.add(request)
        session.flush()
        for n in range(1, 6):
            _add_experiment(session, request, n, None)
        return request.id


def _overlap(a: list[float], b: list[float]) -> bool:
    """Whether two [x, y, width, height] boxes intersect."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_run_page_estimates_units_plots_and_local_times(app, web_sessions):
    running, queued = _simulated_long_run(web_sessions)
    one_var = _one_variable_run(web_sessions)
    watch = ConsoleWatch()
    with serve(app) as base, chromium() as browser:
        context = browser.new_context(
            viewport={"width": 1280, "height": 1000}, timezone_id="Asia/Tokyo", locale="en-GB"
        )
        page = context.new_page()
        watch.attach(page)
        login(page, base, "demo", "demo-password")

        # -- the queued request behind the long simulated run --------------------------------
        page.goto(f"{base}/requests/{queued}")
        page.wait_for_function("() => document.getElementById('eta').textContent !== '–'")
        # 200 experiments ahead and its own 10, WALL_S each: 7 min of waiting, not "1 s"
        assert page.inner_text("#eta") == "7 min"
        clock = page.inner_text("#eta-clock")
        assert "wall clock" in clock and "2 s per experiment measured" in clock, clock
        # the lab's own (simulated) clock told apart: 210 x 5 min
        assert "17.5 h on the lab clock" in clock, clock
        assert "position 1 in the queue, starts in ~7 min" in page.inner_text("#queue-pos")
        screenshot(page, "run-queued-eta")

        # -- the long run itself: units, legend, local times ---------------------------------
        page.goto(f"{base}/requests/{running}")
        page.wait_for_function(DRAWN, arg="plot-best")
        assert page.inner_text("#best-reward").endswith(" mdeg")
        assert page.text_content("#reward-head") == "Reward (mdeg)"
        assert page.get_attribute("#plot-best", "data-y-label") == "reward (mdeg)"
        legend = json.loads(page.get_attribute("#plot-best", "data-legend-box"))
        plot = json.loads(page.get_attribute("#plot-best", "data-plot-box"))
        assert legend[2] > 0 and not _overlap(legend, plot), (legend, plot)
        # the legend sits inside the canvas, above the plot area
        assert legend[1] >= 0 and legend[1] + legend[3] <= plot[1]
        submitted = page.inner_text("#created-at")
        # 22:30 UTC is 07:30 on the 2nd in Tokyo, and the zone is named
        assert "07:30:05" in submitted and "2 Mar 2026" in submitted, submitted
        assert "GMT+9" in submitted or "JST" in submitted, submitted
        assert "Z" not in submitted and "T22" not in submitted
        assert "07:31:05" in page.inner_text("#started-at")  # started 22:31:05 UTC
        screenshot(page, "run-units-legend")

        # -- a one-variable run: reward against T, not T against T ---------------------------
        page.goto(f"{base}/requests/{one_var}")
        page.wait_for_function(DRAWN, arg="plot-map")
        assert page.get_attribute("#plot-map", "data-x-label") == "T"
        assert page.get_attribute("#plot-map", "data-y-label") == "reward (mdeg)"
        assert "Reward against T" in page.inner_text("main")
        one_legend = json.loads(page.get_attribute("#plot-map", "data-legend-box"))
        one_plot = json.loads(page.get_attribute("#plot-map", "data-plot-box"))
        assert not _overlap(one_legend, one_plot)
        screenshot(page, "run-one-variable")

        # -- the request list: best rewards with their unit, local submission times -----------
        page.goto(f"{base}/")
        row = page.locator("tr", has=page.locator(f"a[href='/requests/{running}']")).first
        assert row.locator("td.best-reward").inner_text().endswith("mdeg")
        when = row.locator("td.submitted").inner_text()
        assert "07:30:05" in when and ("GMT+9" in when or "JST" in when), when
        assert row.locator("td.submitted time").get_attribute("datetime") == "2026-03-01T22:30:05Z"
        screenshot(page, "request-list")

        # -- the queue: the start behind the long run, on the wall clock ----------------------
        page.goto(f"{base}/queue")
        starts = page.locator("#queue td.start").all_inner_texts()
        assert starts[0] == "now" and starts[1] == "in ~7 min", starts
        assert "wall clock" in page.inner_text("#queue-clock")
        assert "on the lab clock" in page.locator("#queue td.end").first.inner_text()
        screenshot(page, "queue-estimates")
        context.close()
    assert watch.errors == []
