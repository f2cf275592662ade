"""The RO-Crate in Chromium (issue 21): downloaded from a run page, read back with ``rocrate``,
imported on the import page of a second, fresh installation, where a new request of the same
reaction starts from the imported experiments."""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator

import pytest
from flask import Flask
from rocrate.rocrate import ROCrate

from cloud import create_app
from maosic.db.models import Base
from maosic.db.session import make_engine
from tests.cloud.browser import ConsoleWatch, chromium, login, screenshot, serve
from tests.conftest import Stack, start_stack
from tests.core.rpc_helpers import cspbbr3_config, rpc, wait_for

pytestmark = pytest.mark.browser


def _site(stack: Stack) -> Flask:
    return create_app(
        {
            "DATABASE_URL": stack.db_url,
            "CORE_URL": stack.core_url,
            "CORE_TOKEN": stack.settings.core_token,
            "HARDWARE_URL": stack.hardware_url,
            "SECRET_KEY": "crate-secret",
            "LOG_KEY_FILE": str(stack.settings.resolved_log_key_file),
            "POLL_MS": 400,
        }
    )


@pytest.fixture
def second_stack(tmp_path) -> Iterator[Stack]:
    """Another installation: its own fresh SQLite database, daemon, core and key."""
    url = f"sqlite:///{tmp_path / 'second.sqlite3'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    running = start_stack(url, tmp_path / "second-instance")
    yield running
    running.core.stop()
    running.daemon.stop()


def test_download_validate_and_import_a_crate(stack, second_stack, tmp_path):
    config = dict(cspbbr3_config(), optimizer="random")
    first = rpc(stack.core_url, "request.submit", as_user="demo", config=config, budget=2, seed=6)
    done = wait_for(stack.core_url, first["id"], {"done", "failed"}, 180)
    assert done["status"] == "done", done
    site_a, site_b = _site(stack), _site(second_stack)
    watch = ConsoleWatch()
    with serve(site_a) as base_a, serve(site_b) as base_b, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        watch.attach(page)
        login(page, base_a, "demo", "demo-password")
        page.wait_for_url(f"{base_a}/")
        page.goto(f"{base_a}/requests/{first['id']}")
        with page.expect_download() as info:
            page.click("#download-crate")
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        assert saved.name == f"request-{first['id']}-ro-crate.zip"

        # rocrate reads the zip; every data file it lists is in it, and the owner got the log
        crate = ROCrate(saved)
        listed = {e.id for e in crate.data_entities}
        with zipfile.ZipFile(saved) as archive:
            names = set(archive.namelist())
            summary = json.loads(archive.read("request.json"))
        assert listed <= names and "experiments.json" in listed, (listed, names)
        assert "audit/hardware-commands.json" in listed and summary["audit_log"] == "included"
        assert crate.get("#maosic")["softwareVersion"]

        # the second installation's import page makes it a finished request of the importer
        login(page, base_b, "demo", "demo-password")
        page.wait_for_url(f"{base_b}/")
        page.goto(f"{base_b}/import")
        page.set_input_files("#crate", str(saved))
        page.locator("#import").press("Enter")
        page.wait_for_url(re.compile(rf"{re.escape(base_b)}/requests/\d+$"))
        imported = int(page.url.rsplit("/", 1)[1])
        page.wait_for_function(
            "() => document.getElementById('status').textContent.trim() === 'done'"
        )
        screenshot(page, "crate-imported")
        assert not watch.errors, watch.errors

        # a file that is no crate is refused on the page, with the reason
        junk = tmp_path / "junk.zip"
        junk.write_bytes(b"not a zip at all")
        page.goto(f"{base_b}/import")
        page.set_input_files("#crate", str(junk))
        page.locator("#import").press("Enter")
        page.wait_for_selector("#import-error")
        assert "not a zip file" in page.locator("#import-error").inner_text()
    site_a.extensions["maosic_web"].engine.dispose()
    site_b.extensions["maosic_web"].engine.dispose()

    # a new request of the same reaction there starts from the imported experiments: a goal
    # they already met ends it at once, naming the imported request
    status = rpc(second_stack.core_url, "request.status", id=imported, experiments=True)
    assert status["owner"] == "demo" and len(status["experiments"]) == 2
    target = {"metric": "max_abs_cd_at_exciton", "goal": done["best_reward"] - 1e-6}
    new = rpc(second_stack.core_url, "request.submit", as_user="demo", config=config,
              budget=3, target=target)  # fmt: skip
    final = wait_for(second_stack.core_url, new["id"], {"done", "failed"}, 120)
    assert final["status"] == "done" and final["n_done"] == 0, final
    assert f"of request {imported}" in final["stop_reason"], final
