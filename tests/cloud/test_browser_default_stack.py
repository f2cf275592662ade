"""Issue 20's acceptance in Chromium, on the README's default stack (`python run.py`: both
simulated rigs behind one queue): the README's formula and every shipped example submitted
through the form, each finishing with no failed experiment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot
from tests.faults.processes import ROOT, free_port
from tests.faults.test_all_in_one import README_FORMULA, all_in_one

pytestmark = pytest.mark.browser
EXAMPLES = ROOT / "examples"


@pytest.fixture
def default_stack(tmp_path: Path):
    ports = {name: free_port() for name in ("web", "core", "hardware", "second")}
    with all_in_one(tmp_path, ports):
        yield f"http://127.0.0.1:{ports['web']}"


def _finish(page, name: str) -> None:
    page.fill("#budget", "2")
    page.locator("#submit").press("Enter")  # not a click at coordinates (see test_browser_stack)
    page.wait_for_url(re.compile(r".*/requests/\d+$"))
    page.wait_for_function(
        "() => ['done', 'failed'].includes(document.getElementById('status').textContent.trim())",
        timeout=180_000,
    )
    assert page.locator("#status").inner_text().strip() == "done", name
    assert page.locator("#n-done").inner_text() == "2", name
    assert page.locator("#n-chem-failures").inner_text() == "0", name
    assert page.locator("#n-lab-failures").inner_text() == "0", name


def test_every_example_runs_from_the_form_on_the_default_stack(default_stack):
    base = default_stack
    watch = ConsoleWatch()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        watch.attach(page)
        login(page, base, "demo", "demo-password")
        page.wait_for_url(f"{base}/")

        page.goto(f"{base}/requests/new")
        page.check("input[name=source][value=formula]")
        page.fill("#formula", README_FORMULA)
        page.wait_for_selector("#formula-status.ok")
        page.fill("#space-0-low", "100")
        page.fill("#space-0-high", "160")
        _finish(page, "README formula")

        examples = sorted(EXAMPLES.glob("*.json")) + sorted(EXAMPLES.glob("*.formula"))
        for path in examples:
            page.goto(f"{base}/requests/new")
            page.check("input[name=source][value=upload]")
            page.set_input_files("#config_file", str(path))
            _finish(page, path.name)
            screenshot(page, f"default-stack-{path.stem}-{path.suffix[1:]}")
    assert watch.errors == []
