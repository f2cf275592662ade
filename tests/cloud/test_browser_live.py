"""Browser test of the run page against the database alone: rows appear while the page is open.

This checks the page's own machinery (polling, plots, CSV link, experiment page, cancel via the
core client) without the simulated lab; test_browser_stack.py drives the whole stack.
"""

from __future__ import annotations

import threading
import time

import pytest

from maosic.db.models import RequestStatus
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.helpers import add_run, append_experiment

pytestmark = pytest.mark.browser


def test_run_page_updates_without_reload(app, web_sessions, log_key, fake_core):
    app.config["POLL_MS"] = 300
    request_id = add_run(web_sessions, "demo", n_experiments=1, log_key=log_key)
    watch = ConsoleWatch()
    with serve(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/requests/{request_id}")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        page.wait_for_function("() => document.getElementById('n-done').textContent === '1'")

        def feed() -> None:
            for number in (2, 3, 4):
                time.sleep(0.4)
                append_experiment(web_sessions, request_id, number, log_key)

        feeder = threading.Thread(target=feed)
        feeder.start()
        page.wait_for_function(
            "() => Number(document.getElementById('n-done').textContent) >= 4", timeout=15_000
        )
        feeder.join()
        assert page.evaluate("window.__sameDocument") is True
        assert page.locator("#experiments tbody tr").count() == 4
        assert int(page.get_attribute("#plot-map", "data-points")) == 4
        assert int(page.get_attribute("#plot-best", "data-points")) >= 4
        assert int(page.get_attribute("#plot-cd", "data-points")) > 100
        assert page.locator("#latest-number").inner_text() == "experiment 4"
        screenshot(page, "run-live")

        with page.expect_download() as info:
            page.click("#download-csv")
        lines = open(info.value.path(), encoding="utf-8").read().splitlines()
        assert lines[0].startswith("number,status,C,T,reward")
        assert len(lines) == 5

        page.click("#experiments tbody tr:first-child a")
        page.wait_for_selector("canvas.spectrum")
        assert page.locator("#commands tbody tr").count() == 1
        assert page.evaluate(
            "Array.from(document.querySelectorAll('canvas.spectrum'))"
            ".every(c => Number(c.dataset.points) > 0)"
        )
        screenshot(page, "experiment")

        page.goto(f"{base}/requests/{request_id}")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#cancel")
        page.wait_for_selector(".flash.info")
        # (the run page also asks request.suggest for what runs next)
        cancels = [i for i, c in enumerate(fake_core.calls) if c[0] == "request.cancel"]
        assert [fake_core.calls[i] for i in cancels] == [("request.cancel", {"id": request_id})]
        assert fake_core.as_users[cancels[0]] == "demo"
        page.click("#logout")
        page.wait_for_url(f"{base}/login")
    assert watch.errors == []


def test_queue_and_submit_form_render(app, web_sessions, fake_core):
    add_run(web_sessions, "demo", 1, RequestStatus.RUNNING)
    add_run(web_sessions, "operator", 0, RequestStatus.QUEUED)
    add_run(web_sessions, "demo", 0, RequestStatus.QUEUED)
    watch = ConsoleWatch()
    with serve(app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/queue")
        assert page.locator("#queue tbody tr").count() == 3
        screenshot(page, "queue")
        page.goto(f"{base}/requests/new")
        # The stored CsPbBr3 reaction prefills its search space.
        page.wait_for_function("() => document.getElementById('space-0-name').value === 'T'")
        assert page.input_value("#space-1-name") == "C"
        assert page.input_value("#space-0-dx") == "0.5"
        page.check("input[name=source][value=formula]")
        page.fill("#formula", "R1·SP1[0.1, 0, 0.1] × H[100, 10, 60]\n | ABS-CD[100] | QQ[1]")
        page.wait_for_selector(".formula-status.error")
        assert "line 2, column 18" in page.inner_text("#formula-status")
        screenshot(page, "submit-formula-error")
        page.fill("#formula", "R1·SP1[0.1, 0, 0.1] × H[100, 10, 60]\n | ABS-CD[100]")
        page.wait_for_selector(".formula-status.ok")
    assert watch.errors == []
