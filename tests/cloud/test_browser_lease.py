"""The operator's lease panel and the run page's lab facts in Chromium, on a real daemon.

Operator: take the lab, a manual command works under the lease, give it back; while a campaign
holds the lab a manual command is refused naming it, and "Pause the campaign and take the lab"
(confirmed) takes it over and shows the recovery it ran. Run page: the failure counts and the
low-stock warning appear without a reload.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from cloud import create_app
from maosic.db.models import Request
from maosic.db.session import transaction
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.campaign import WORKER, Campaign
from tests.cloud.helpers import add_run

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_app(db_url, web_sessions, log_key, sim_daemon) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "HARDWARE_URL": sim_daemon.url,
            "CORE_URL": "http://127.0.0.1:9/",
            "SECRET_KEY": "lease-secret",
            "CORE_TOKEN": "unused-installation-token",
            "LOG_KEY_FILE": str(log_key),
            "POLL_MS": 300,
        }
    )
    yield app
    app.extensions["maosic_web"].engine.dispose()


def _wait_text(page, element_id: str, text: str) -> None:
    page.wait_for_function(
        "([id, text]) => document.getElementById(id).textContent.includes(text)",
        arg=[element_id, text],
    )


def test_operator_takes_drives_and_gives_back_the_lab(browser_app, sim_daemon):
    watch = ConsoleWatch()
    with serve(browser_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "operator", "operator-password")
        page.goto(f"{base}/operator/hardware")
        _wait_text(page, "lease-holder", "nobody")
        assert page.is_visible("#lease-take") and not page.is_visible("#lease-release")

        page.click("#lease-take")
        _wait_text(page, "lease-holder", "operator:operator")
        _wait_text(page, "lease-whose", "you")
        assert page.is_visible("#lease-release") and not page.is_visible("#lease-take")
        assert "min" in page.inner_text("#lease-left")  # 10 min hold, counting down
        epoch = int(page.inner_text("#lease-epoch"))

        page.fill("form[data-method='pump.fill'] input[name=volume_mL]", "0.2")
        page.click("form[data-method='pump.fill'] button[type=submit]")
        _wait_text(page, "command-log", "✓ pump.fill")
        assert sim_daemon.lab.syringe_volume_mL("SP1") == pytest.approx(0.2)
        assert sim_daemon.daemon.lease.status()["epoch"] == epoch
        screenshot(page, "lease-held")

        page.click("#lease-release")
        _wait_text(page, "lease-holder", "nobody")
        assert sim_daemon.daemon.lease.status()["holder"] is None
        assert page.is_visible("#lease-take")
    assert watch.errors == []


def test_campaign_refuses_manual_commands_until_paused(browser_app, sim_daemon):
    watch = ConsoleWatch()
    campaign = Campaign(sim_daemon.url)
    campaign.call("pump.fill", pump="SP2", reagent="PbBr2", volume_mL=0.3)
    try:
        with serve(browser_app) as base, chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            watch.attach(page)
            login(page, base, "operator", "operator-password")
            page.goto(f"{base}/operator/hardware")
            _wait_text(page, "lease-holder", WORKER)
            _wait_text(page, "lease-whose", "a campaign")
            assert page.is_visible("#lease-preempt") and not page.is_visible("#lease-take")
            assert page.inner_text("#lease-preempt") == "Pause the campaign and take the lab"

            page.click("form[data-method='pump.fill'] button[type=submit]")
            _wait_text(page, "command-log", "✗ pump.fill")
            assert WORKER in page.inner_text("#command-log")
            assert WORKER in page.inner_text("#lease-message")
            assert sim_daemon.lab.syringe_volume_mL("SP1") == 0.0
            screenshot(page, "lease-refused")

            page.once("dialog", lambda dialog: dialog.accept())
            page.click("#lease-preempt")
            _wait_text(page, "lease-holder", "operator:operator")
            assert page.is_visible("#lease-recovery")
            assert "SP2" in page.inner_text("#lease-recovered")
            assert f"taken from {WORKER}" in page.inner_text("#lease-message")
            page.click("form[data-method='pump.fill'] button[type=submit]")
            _wait_text(page, "command-log", "✓ pump.fill")
            screenshot(page, "lease-taken-over")
    finally:
        campaign.close()
    assert watch.errors == []


def test_run_page_shows_lab_failures_and_low_stock_live(browser_app, web_sessions, sim_daemon):
    run_id = add_run(web_sessions, "demo", n_experiments=3)
    watch = ConsoleWatch()
    with serve(browser_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.goto(f"{base}/requests/{run_id}")
        page.wait_for_function("() => document.getElementById('run').dataset.nDone === '3'")
        assert page.inner_text("#n-lab-failures") == "0"
        assert not page.is_visible("#stock-warning")

        with transaction(web_sessions) as session:
            session.get(Request, run_id).n_lab_failures = 2
        with sim_daemon.daemon.ledger_lock:
            sim_daemon.daemon.stock_mL["PbBr2"] = 0.5
        _wait_text(page, "n-lab-failures", "2")
        page.wait_for_selector("#stock-warning:not(.hidden)", timeout=20_000)
        warning = page.inner_text("#stock-warning")
        assert "PbBr2" in warning and "enough for 3 more experiments" in warning
        screenshot(page, "run-low-stock")
    assert watch.errors == []
