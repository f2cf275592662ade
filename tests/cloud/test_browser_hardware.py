"""Operators and admins in Chromium, against the simulated hardware daemon (no core needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from cloud import create_app
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def daemon_app(db_url, web_sessions, log_key) -> Iterator[Flask]:
    from hardware_interface.server import start_daemon

    daemon = start_daemon(sim=True, port=0, seed=0, speed=0.0)
    app = create_app(
        {
            "DATABASE_URL": db_url,
            "HARDWARE_URL": daemon.url,
            "CORE_URL": "http://127.0.0.1:9/",
            "SECRET_KEY": "hw-secret",
            "CORE_TOKEN": "unused-installation-token",
            "LOG_KEY_FILE": str(log_key),
        }
    )
    yield app
    app.extensions["maosic_web"].engine.dispose()
    daemon.stop()


def test_operator_drives_the_daemon_and_admin_sees_users(daemon_app):
    watch = ConsoleWatch()
    with serve(daemon_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch.attach(page)
        login(page, base, "operator", "operator-password")
        page.goto(f"{base}/operator/hardware")
        page.wait_for_function(
            "() => document.getElementById('reachable').textContent === 'reachable'"
        )
        assert "°C" in page.inner_text("#heater-temp")
        assert page.locator("#pumps tbody tr").count() >= 3
        assert page.inner_text("#faults") == "none"

        page.fill("form[data-method='pump.fill'] input[name=volume_mL]", "0.2")
        page.click("form[data-method='pump.fill'] button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('command-log').textContent.includes('pump.fill')"
        )
        assert "✓ pump.fill" in page.inner_text("#command-log")
        page.wait_for_function(
            "() => document.getElementById('pumps').textContent.includes('0.200 / ')"
        )
        # Stock bottles: shown, and an operator books a refill (20 mL Cs-oleate, 0.2 drawn).
        page.wait_for_function(
            "() => document.getElementById('stock').textContent.includes('19.80')"
        )
        page.fill("#refill input[name=added_mL]", "5")
        page.click("#refill button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('stock').textContent.includes('24.80')"
        )
        assert "✓ reagent.refill" in page.inner_text("#command-log")
        # The daemon's own limits still apply: an absurd setpoint is refused and shown.
        page.fill("form[data-method='heater.set'] input[name=setpoint_C]", "900")
        page.click("form[data-method='heater.set'] button[type=submit]")
        page.wait_for_function(
            "() => document.getElementById('command-log').textContent.includes('✗ heater.set')"
        )
        page.click("#estop")
        page.wait_for_function(
            "() => document.getElementById('command-log').textContent.includes('system.stop')"
        )
        screenshot(page, "hardware")
        page.click("#logout")
        page.wait_for_url(f"{base}/login")

        login(page, base, "admin", "admin-password")
        page.goto(f"{base}/admin/users")
        assert page.locator("#users tbody tr").count() == 3
        screenshot(page, "admin-users")
    assert watch.errors == []
