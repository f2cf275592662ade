"""Replicates and a person's points from the run page, in Chromium, on the whole stack
(simulated daemon + core + worker), issue 21.

A chemist repeats a finished request's best point three times and sees the reproducibility
panel (mean, standard deviation, CV, each replicate's spectrum overlaid); on a running request
they see the optimizer's suggestion, propose their own point, and the experiment that runs it
records that they chose it."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.test_browser_stack import stack_app  # noqa: F401  (the fixture)
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for

pytestmark = pytest.mark.browser

TARGET = {"metric": "max_abs_cd_at_exciton"}


def test_repeat_the_best_and_see_the_reproducibility_panel(stack_app):  # noqa: F811
    core = stack_app.config["CORE_URL"]
    points = [{"T": 120.0, "C": 0.5}, {"T": 160.0, "C": 0.9}]
    first = rpc(core, "request.submit", as_user="demo", config=cspbbr3_config(), points=points,
                target=TARGET)["id"]  # fmt: skip
    wait_for(core, first, {"done"})
    watch = ConsoleWatch()
    with serve(stack_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/requests/{first}")
        page.wait_for_function("() => document.getElementById('run').dataset.chooseLoaded")
        assert "has ended" in page.inner_text("#next-point")
        assert page.locator("#experiments tbody tr").first.locator("td").nth(2).inner_text() == (
            "demo (person)"
        )
        page.fill("#repeat-n", "3")
        page.locator("#repeat").press("Enter")
        page.wait_for_url(re.compile(r"/requests/\d+$"))
        again = int(page.url.rsplit("/", 1)[1])
        assert again != first
        assert "repeats those conditions 3 times" in page.inner_text("main")
        wait_for(core, again, {"done"})
        page.wait_for_function(
            "() => !document.getElementById('reproducibility').classList.contains('hidden')"
            " && document.querySelectorAll('#replicate-stats tbody tr').length === 1"
            " && document.querySelector('#replicate-stats tbody td:nth-child(2)')"
            ".textContent === '4'",
            timeout=30_000,
        )
        page.wait_for_selector("#propose-form", state="hidden")  # nothing to add once it is done
        cells = page.locator("#replicate-stats tbody tr td").all_inner_texts()
        status = rpc(core, "request.status", id=first, experiments=True)
        best = max(status["experiments"], key=lambda e: e["reward"])
        assert cells[0] == ", ".join(f"{k} = {v:g}" for k, v in best["params"].items())
        groups = rpc(core, "request.replicates", id=again)
        assert float(cells[2]) == pytest.approx(groups[0]["mean"], rel=1e-3)
        assert cells[4].endswith("%") and float(cells[4][:-2]) == pytest.approx(
            groups[0]["cv_percent"], rel=1e-2
        )
        # each run's spectrum overlaid, with a legend entry each, clear of the plot
        page.wait_for_function(
            "() => Number(document.getElementById('plot-replicates').dataset.points) > 0"
        )
        legend = json.loads(page.get_attribute("#plot-replicates", "data-legend-box"))
        plot = json.loads(page.get_attribute("#plot-replicates", "data-plot-box"))
        assert legend[1] + legend[3] <= plot[1]
        assert len(groups[0]["replicates"]) == 3
        screenshot(page, "run-reproducibility")
    assert watch.errors == []


def test_propose_a_point_beside_the_optimizers_suggestion(stack_app):  # noqa: F811
    core = stack_app.config["CORE_URL"]
    running = rpc(core, "request.submit", as_user="demo", config=cspbbr3_config(), budget=200,
                  target=TARGET)["id"]  # fmt: skip
    watch = ConsoleWatch()
    try:
        with serve(stack_app) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            watch.attach(page)
            login(page, base, "demo", "demo-password")
            page.goto(f"{base}/requests/{running}")
            page.wait_for_function("() => document.getElementById('run').dataset.chooseLoaded")
            assert "the optimizer (" in page.inner_text("#next-point")
            page.fill("#p-T", "400")  # outside the bounds: the core says so
            page.fill("#p-C", "0.75")
            page.evaluate("document.getElementById('propose-form').noValidate = true")
            page.locator("#propose").press("Enter")
            page.wait_for_load_state()
            assert "'T' = 400.0 is outside its bounds" in page.inner_text(".flash.error")
            page.fill("#p-T", "141.5")
            page.fill("#p-C", "0.75")
            page.locator("#propose").press("Enter")
            page.wait_for_load_state()
            assert "Your point runs next: T = 141.5, C = 0.75" in page.inner_text("main")
            screenshot(page, "run-propose")
        mine: list[dict] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the worker takes it before the optimizer's next
            status = rpc(core, "request.status", id=running, experiments=True)
            mine = [e for e in status["experiments"] if e["chosen_by"] == "user:demo"]
            if mine and mine[0]["status"] == "done":
                break
            time.sleep(0.1)
        assert mine and mine[0]["params"] == {"T": 141.5, "C": 0.75}, mine
    finally:
        rpc(core, "request.cancel", id=running)
    assert watch.errors == []


def test_a_list_of_points_from_the_form(stack_app):  # noqa: F811
    core = stack_app.config["CORE_URL"]
    watch = ConsoleWatch()
    with serve(stack_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/requests/new")
        page.wait_for_function("() => document.getElementById('space-0-name').value === 'T'")
        assert page.locator("#points_text").is_hidden()  # only for a list
        page.select_option("#metric", "max_abs_cd_at_exciton")
        page.select_option("#plan", "points")
        assert page.locator("#optimizer").is_disabled()  # a list runs without an optimizer
        page.fill("#points_text", "T,C\n125,0.6\n175,1.1\n")
        screenshot(page, "submit-points")
        page.locator("#submit").press("Enter")
        page.wait_for_url(re.compile(r".*/requests/\d+$"))
        request_id = int(page.url.rsplit("/", 1)[1])
        status = wait_for(core, request_id, {"done"})
        assert status["optimizer"] == "points" and status["budget"] == 2
        page.wait_for_function(
            "() => document.querySelectorAll('#experiments tbody tr').length === 2", timeout=30_000
        )
        rows = page.locator("#experiments tbody tr").all_inner_texts()
        assert "T = 175, C = 1.1" in rows[0] and "demo (person)" in rows[0], rows
        assert "T = 125, C = 0.6" in rows[1], rows
    assert watch.errors == []
