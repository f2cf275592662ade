"""End-to-end in Chromium against the whole stack (simulated daemon + core + worker).

A chemist registers, logs in, submits the CsPbBr3 request, watches the run page reach three
experiments without a reload, looks at the plots, downloads the CSV, cancels and logs out; an
operator checks the hardware and sends a manual command; an admin sees the users. The browser
console must stay free of errors. Screenshots go to artifacts_dir().
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask

from cloud import create_app
from maosic.db.session import make_engine, session_factory, transaction
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.helpers import cspbbr3_reaction
from tests.core.rpc_helpers import rpc

pytestmark = pytest.mark.browser


@pytest.fixture
def stack_app(stack) -> Iterator[Flask]:
    engine = make_engine(stack.db_url)
    with transaction(session_factory(engine)) as session:
        cspbbr3_reaction(session)  # no-op when the seed already stored it
    engine.dispose()
    app = create_app(
        {
            "DATABASE_URL": stack.db_url,
            "CORE_URL": stack.core_url,
            "CORE_TOKEN": stack.settings.core_token,
            "HARDWARE_URL": stack.hardware_url,
            "SECRET_KEY": "e2e-secret",
            "LOG_KEY_FILE": str(stack.settings.resolved_log_key_file),
            "POLL_MS": 400,
        }
    )
    yield app
    app.extensions["maosic_web"].engine.dispose()


def test_chemist_journey(stack_app):
    watch = ConsoleWatch()
    with serve(stack_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        watch.attach(page)
        page.goto(f"{base}/register")
        page.fill("#username", "chemist")
        page.fill("#password", "perovskite-2020")
        page.fill("#confirm", "perovskite-2020")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.click("#logout")
        page.wait_for_url(f"{base}/login")
        screenshot(page, "login")
        login(page, base, "chemist", "perovskite-2020")
        page.wait_for_url(f"{base}/")

        page.goto(f"{base}/requests/new")
        page.wait_for_function("() => document.getElementById('space-0-name').value === 'T'")
        assert "CsPbBr3" in page.locator("#reaction_id option:checked").inner_text()
        page.fill("#budget", "60")  # far more than the test waits for: cancel must find it running
        screenshot(page, "submit")
        # by key, not by a click at coordinates: right after a full-page screenshot of a page
        # taller than the window, Chromium may still be restoring the viewport, and the click
        # lands beside the button
        page.locator("#submit").press("Enter")
        page.wait_for_url(re.compile(r".*/requests/\d+$"))
        request_id = int(page.url.rsplit("/", 1)[1])

        page.evaluate("window.__sameDocument = true")  # gone if the page reloads
        page.wait_for_function(
            "() => Number(document.getElementById('n-done').textContent) >= 3", timeout=180_000
        )
        assert page.evaluate("window.__sameDocument") is True
        for canvas in ("#plot-best", "#plot-map", "#plot-cd"):
            assert int(page.get_attribute(canvas, "data-points")) > 0, canvas
        # The absorption plot draws whatever absorbance spectrum the campaign stored.
        latest = page.evaluate(
            "async () => (await (await fetch(location.pathname + '/live.json')).json()).latest"
        )
        kinds = {s["kind"] for s in latest["spectra"]}
        drawn = int(page.get_attribute("#plot-abs", "data-points"))
        assert (drawn > 0) == ("absorbance" in kinds), kinds
        screenshot(page, "run")

        with page.expect_download() as info:
            page.click("#download-csv")
        with open(info.value.path(), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        assert lines[0].startswith("number,status")
        assert len(lines) >= 4  # header + at least three experiments

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#cancel")
        page.wait_for_url(f"{base}/requests/{request_id}")
        page.wait_for_function(
            "() => document.getElementById('cancel').disabled === true", timeout=60_000
        )
        page.wait_for_function(
            "() => document.querySelector('#status .badge').textContent === 'cancelled'",
            timeout=120_000,
        )
        page.click("#experiments tbody tr:last-child a")
        page.wait_for_selector("canvas.spectrum")
        screenshot(page, "experiment-stack")
        page.click("#logout")
        page.wait_for_url(f"{base}/login")
    assert watch.errors == []


def test_fig_s10_file_uploaded_in_the_browser_runs_to_the_end(stack_app):
    """The paper's configuration (examples/fig_s10.json, its own fields and values) uploaded
    through the form, with target and optimizer left to the file, runs 5 experiments."""
    from pathlib import Path

    fig_s10 = Path(__file__).resolve().parents[2] / "examples" / "fig_s10.json"
    watch = ConsoleWatch()
    with serve(stack_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/requests/new")
        page.check("input[name=source][value=upload]")
        page.set_input_files("#config_file", str(fig_s10))
        assert page.locator("#metric").input_value() == ""  # as the configuration says
        assert page.locator("#optimizer").input_value() == ""
        page.fill("#budget", "5")
        page.locator("#submit").press("Enter")
        page.wait_for_load_state()
        error = page.locator("#submit-error")
        assert error.count() == 0, error.inner_text()
        page.wait_for_url(re.compile(r".*/requests/\d+$"))
        page.wait_for_function(
            "() => document.getElementById('status').textContent.trim() === 'done'",
            timeout=180_000,
        )
        assert page.locator("#n-done").inner_text() == "5"
        screenshot(page, "fig_s10_done")
        request_id = int(page.url.rsplit("/", 1)[1])
    assert watch.errors == []
    status = rpc(stack_app.config["CORE_URL"], "request.status", id=request_id)
    assert status["optimizer"] == "snobfit"  # the file's, with the form left as it was
    assert status["target"]["metric"] == "max_abs_cd_at_exciton"  # the file's metric array
    assert status["n_chemistry_failures"] == 0 and status["n_lab_failures"] == 0, status
