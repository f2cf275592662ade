"""Offline characterization in Chromium (issue 21): the owner uploads a TEM image and an
absolute PLQY on the experiment page and sees them listed; the reaction's calibration page
draws the proxy-vs-absolute scatter with its fitted line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from maosic import attachments
from maosic.db.models import Experiment, Feature, Request
from maosic.db.session import transaction
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.helpers import add_run

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(100))
PROXY = [1.0, 2.0, 3.0, 4.0]
ABSOLUTE = {2: 21.0, 3: 29.5, 4: 41.0}  # experiment 1's comes from the browser


def _proxies(sessions, run: int) -> int:
    with transaction(sessions) as session:
        rows = session.scalars(
            select(Experiment).where(Experiment.request_id == run).order_by(Experiment.number)
        )
        for e, proxy in zip(rows, PROXY, strict=True):
            session.add(Feature(experiment_id=e.id, name="plqy_proxy", value=proxy, unit="a.u."))
            if e.number in ABSOLUTE:
                attachments.add(session, e.id, None, "absolute_plqy", value=ABSOLUTE[e.number])
        return session.get(Request, run).reaction_id


def test_upload_list_and_calibration_plot(app, web_sessions):
    run = add_run(web_sessions, "demo", n_experiments=4)
    reaction_id = _proxies(web_sessions, run)
    watch = ConsoleWatch()
    with serve(app) as base, chromium() as browser:
        page = browser.new_page()
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/requests/{run}/experiments/1")
        page.select_option("#attachment-kind", "tem_image")
        page.fill("#attachment-name", "TEM 80k")
        page.set_input_files(
            "#attachment-file", files=[{"name": "tem.png", "mimeType": "image/png", "buffer": PNG}]
        )
        page.click("#attach")
        page.wait_for_selector("#attachment-list tr[data-kind=tem_image]")
        page.select_option("#attachment-kind", "absolute_plqy")
        page.fill("#attachment-name", "integrating sphere")
        page.fill("#attachment-value", "11.5")
        page.click("#attach")
        page.wait_for_selector("#attachment-list tr[data-kind=absolute_plqy]")
        listed = page.inner_text("#attachment-list")
        assert "TEM 80k" in listed and "tem.png" in listed and "image/png" in listed
        assert "11.5 %" in listed and "integrating sphere" in listed
        screenshot(page, "attachments-experiment")

        page.click("#calibration-link")
        page.wait_for_url(f"**/reactions/{reaction_id}/calibration")
        page.wait_for_function(
            "() => Number(document.getElementById('plot-calibration').dataset.points) > 0"
        )
        # 4 measured pairs and the 2 ends of the fitted line
        assert page.get_attribute("#plot-calibration", "data-points") == "6"
        assert page.inner_text("#fit-n") == "4"
        shown = json.loads(page.inner_text("#calibrated-target"))
        assert shown["metric"] == "max_plqy" and shown["calibration"]["slope"] > 0
        screenshot(page, "attachments-calibration")

        # "New request with this target": the form carries it, and the core receives it whole
        page.click("#new-request-with-target")
        page.wait_for_url("**/requests/new?target=*")
        assert json.loads(page.input_value("#target_json")) == shown
        page.wait_for_function("() => document.getElementById('space-0-name').value === 'T'")
        page.locator("#submit").press("Enter")
        page.wait_for_url("**/requests/*")
        method, params = app.extensions["maosic_web"].core.calls[-1]
        assert method == "request.submit" and params["target"] == shown
    # the stand-in core's request 1000 does not exist: the page it redirects to is a 404
    assert [e for e in watch.errors if "/requests/1000" not in e] == []
