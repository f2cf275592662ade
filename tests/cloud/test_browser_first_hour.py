"""A chemist's first hour in Chromium against the whole stack (issue 20): the README's formula,
a formula file pasted or uploaded with its own search space, the rows of another source cleared,
and an oversized file refused without losing the form."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.cloud.test_browser_stack import stack_app  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
README_FORMULA = (
    "(R1·SP1[0.2, 60, 0.1] + R2·SP2[0.2, 60, 0.1]) × H[$T, 10, 20] | CR[sampler, cd] | ABS-CD[100]"
)


def _rows(page) -> list[tuple[str, str, str, str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#space-card tbody tr')).map(
             (tr) => Array.from(tr.querySelectorAll('input')).map((i) => i.value))"""
    )


def _submit_and_finish(page, base: str, budget: str = "2") -> None:
    page.fill("#budget", budget)
    page.locator("#submit").press("Enter")  # not a click at coordinates (see test_browser_stack)
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    page.wait_for_function(
        "() => document.getElementById('status').textContent.trim() === 'done'", timeout=180_000
    )
    assert page.locator("#n-done").inner_text() == budget


def test_first_hour_in_the_browser(stack_app, tmp_path):  # noqa: F811
    watch = ConsoleWatch()
    with serve(stack_app) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.wait_for_url(f"{base}/")

        # 1. the README's formula, T as its only searched row
        page.goto(f"{base}/requests/new")
        page.wait_for_function("() => document.getElementById('space-0-name').value === 'T'")
        page.check("input[name=source][value=formula]")
        # the stored reaction's rows are not the formula's: they go
        assert all(not row[0] for row in _rows(page)), _rows(page)
        page.fill("#formula", README_FORMULA)
        page.wait_for_selector("#formula-status.ok")
        assert _rows(page)[0][0] == "T"  # the variable's row, from the live check
        page.fill("#space-0-low", "100")
        page.fill("#space-0-high", "160")
        screenshot(page, "first-hour-readme-formula")
        _submit_and_finish(page, base)

        # 2. a formula file pasted whole: its "# vary"/"# fix" lines fill the rows
        text = (EXAMPLES / "cspbbr3.formula").read_text(encoding="utf-8")
        page.goto(f"{base}/requests/new")
        page.check("input[name=source][value=formula]")
        page.fill("#formula", text)
        page.wait_for_selector("#formula-status.ok")
        page.wait_for_function("() => document.getElementById('space-4-name').value === 't_eq'")
        rows = _rows(page)
        assert rows[0] == ["T", "90", "180", "0.5"] and rows[1] == ["C", "0.2", "1.2", "0.01"]
        assert rows[2] == ["Q", "0.15", "0.15", ""]  # fixed: equal bounds
        screenshot(page, "first-hour-formula-file")
        _submit_and_finish(page, base)

        # 3. the same file uploaded
        page.goto(f"{base}/requests/new")
        page.check("input[name=source][value=upload]")
        page.set_input_files("#config_file", str(EXAMPLES / "cspbbr3.formula"))
        page.fill("#name", "uploaded formula file")
        _submit_and_finish(page, base)
        assert "uploaded formula file" in page.content()  # the typed name, not the file's

        # 4. a file over the limit: refused on the page, the form kept as typed
        big = tmp_path / "huge.json"
        big.write_bytes(b"{" + b" " * (5 * 1024 * 1024) + b"}")
        page.goto(f"{base}/requests/new")
        page.check("input[name=source][value=upload]")
        page.set_input_files("#config_file", str(big))
        page.fill("#budget", "7")
        page.locator("#submit").press("Enter")
        status = page.locator("#upload-status")
        status.wait_for()
        assert "over the limit of 2.0 MB" in status.inner_text()
        assert page.url.endswith("/requests/new") and page.input_value("#budget") == "7"
        screenshot(page, "first-hour-too-large")
    assert watch.errors == []


def test_a_colleague_follows_a_shared_run_read_only(stack_app):  # noqa: F811
    watch = ConsoleWatch()
    with serve(stack_app) as base, chromium() as browser:
        colleague = browser.new_page()
        watch.attach(colleague)
        colleague.goto(f"{base}/register")
        colleague.fill("#username", "colleague")
        colleague.fill("#password", "perovskite-2020")
        colleague.fill("#confirm", "perovskite-2020")
        colleague.click("button[type=submit]")
        colleague.wait_for_url(f"{base}/")

        owner = browser.new_page()
        watch.attach(owner)
        login(owner, base, "demo", "demo-password")
        owner.wait_for_url(f"{base}/")
        owner.goto(f"{base}/requests/new")
        owner.check("input[name=source][value=upload]")
        owner.set_input_files("#config_file", str(EXAMPLES / "cspbbr3.json"))
        _submit_and_finish(owner, base)
        run_url = owner.url
        owner.click("#sharing")
        owner.fill("#username", "colleague")
        owner.click("#share")
        owner.wait_for_selector("#shares")

        colleague.goto(run_url)
        colleague.wait_for_function(
            "() => Number(document.getElementById('n-done').textContent) === 2"
        )
        assert "shared with you by demo" in colleague.inner_text("#shared-note")
        assert colleague.locator("#cancel").count() == 0
        assert int(colleague.get_attribute("#plot-best", "data-points")) > 0
        screenshot(colleague, "shared-run")
    assert watch.errors == []
