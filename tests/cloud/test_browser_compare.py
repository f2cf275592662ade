"""Comparing requests in Chromium (issue 21): tick three on the request list, press "Compare
selected", and read the overlaid best-so-far curves, their legend and the table."""

from __future__ import annotations

import json

import pytest

from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.test_browser_run_display import _overlap
from tests.cloud.test_compare import make_run

pytestmark = pytest.mark.browser

DRAWN = "(id) => Number(document.getElementById(id).dataset.points) > 0"


def test_compare_three_requests(app, web_sessions):
    a = make_run(web_sessions, "demo", [0.1, 0.5, 0.3, 0.9, 1.0], "snobfit")
    b = make_run(web_sessions, "demo", [0.2, 0.2, 0.96, 0.4], "random")
    c = make_run(
        web_sessions,
        "demo",
        [0.3, None, 0.6, 0.7],
        "points",
        chosen_by=["user:alice", "user:alice", "user:alice", "confirm"],
    )
    left_out = make_run(web_sessions, "demo", [0.4])
    watch = ConsoleWatch()
    with serve(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "demo", "demo-password")

        # -- the request list: the button works from two ticked requests --------------------
        page.goto(f"{base}/")
        assert page.is_disabled("#compare-selected")
        page.check(f"#pick-{a}")
        assert page.is_disabled("#compare-selected")  # one is no comparison
        page.check(f"#pick-{b}")
        page.check(f"#pick-{c}")
        assert page.inner_text("#compare-count") == "3 ticked"
        assert not page.is_checked(f"#pick-{left_out}")
        screenshot(page, "compare-list")
        page.click("#compare-selected")
        page.wait_for_url("**/compare?**")
        page.wait_for_function(DRAWN, arg="plot-compare")

        # -- the plot: three curves, the legend in rows above the plot area ----------------
        assert page.get_attribute("#plot-compare", "data-curves") == "3"
        legend = json.loads(page.get_attribute("#plot-compare", "data-legend"))
        assert legend[:3] == [
            f"#{a} chiral CsPbBr3 nanocrystals · snobfit",
            f"#{b} chiral CsPbBr3 nanocrystals · random",
            f"#{c} chiral CsPbBr3 nanocrystals · points (points chosen by alice)",
        ]
        assert legend[3] == "95 % of the best"  # the dashed bar the table counts to
        # 5 + 4 + 3 best-so-far points and the bar's 2 ends
        assert page.get_attribute("#plot-compare", "data-points") == "14"
        assert page.get_attribute("#plot-compare", "data-y-label") == "best reward so far (mdeg)"
        box = json.loads(page.get_attribute("#plot-compare", "data-legend-box"))
        plot = json.loads(page.get_attribute("#plot-compare", "data-plot-box"))
        width = int(page.get_attribute("#plot-compare", "width"))
        assert box[2] > 0 and not _overlap(box, plot), (box, plot)
        assert box[1] >= 0 and box[1] + box[3] <= plot[1]  # above the plot area
        assert box[0] >= 0 and box[0] + box[2] <= width  # and inside the canvas
        # one colour per request, the table's swatches the curves' colours
        swatches = page.eval_on_selector_all(
            "#compare-table .swatch", "els => els.map((e) => getComputedStyle(e).backgroundColor)"
        )
        assert len(swatches) == 3 and len(set(swatches)) == 3

        # -- the table ------------------------------------------------------------------------
        def cell(request_id: int, name: str) -> str:
            return page.inner_text(f"#compare-row-{request_id} td.{name}").strip()

        assert [cell(r, "to-near-best") for r in (a, b, c)] == ["5", "3", "not reached"]
        assert [cell(r, "best") for r in (a, b, c)] == ["1 mdeg", "0.96 mdeg", "0.7 mdeg"]
        assert [cell(r, "optimizer") for r in (a, b, c)] == ["snobfit", "random", "points"]
        assert [cell(r, "n-done") for r in (a, b, c)] == ["5 / 10", "4 / 10", "4 / 10"]
        assert cell(c, "person-chosen") == "3 (alice)"
        assert page.locator("#compare-notes").count() == 0
        screenshot(page, "compare")

        # -- the download: the same curves --------------------------------------------------
        with page.expect_download() as info:
            page.click("#download-json")
        data = json.loads(open(info.value.path(), encoding="utf-8").read())
        assert [r["experiments_to_near_best"] for r in data["requests"]] == [5, 3, None]

        # -- eight requests, a long reaction name: the legend wraps, never over the curves ----
        more = [
            make_run(
                web_sessions,
                "demo",
                [0.1 * k, 0.1 * k + 0.05],
                reaction_name="CsPbBr3 with (R)-methylbenzylammonium bromide, long name",
            )
            for k in range(1, 6)
        ]
        page.goto(f"{base}/compare?ids=" + ",".join(str(i) for i in (a, b, c, *more)))
        page.wait_for_function(DRAWN, arg="plot-compare")
        assert page.get_attribute("#plot-compare", "data-curves") == "8"
        assert len(json.loads(page.get_attribute("#plot-compare", "data-legend"))) == 9
        box = json.loads(page.get_attribute("#plot-compare", "data-legend-box"))
        plot = json.loads(page.get_attribute("#plot-compare", "data-plot-box"))
        assert box[3] > 20 and not _overlap(box, plot), (box, plot)  # more than one row
        assert box[0] >= 0 and box[0] + box[2] <= width
        assert "run different reactions" in page.inner_text("#compare-notes")
        screenshot(page, "compare-eight")
        assert watch.errors == []

        # -- an id nobody may see: a clear error on the page (a 404, which Chromium logs) -----
        page.goto(f"{base}/compare?ids={a},99999")
        assert "No request #99999 that you may see" in page.inner_text("#compare-error")
        assert page.locator("#plot-compare").count() == 0
        screenshot(page, "compare-error")
    assert len(watch.errors) == 1 and "status of 404" in watch.errors[0], watch.errors
