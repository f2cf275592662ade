"""Playwright helpers: Debian's Chromium, a waitress server in a thread, console error capture."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from waitress import wasyncore
from waitress.server import create_server

from tests.conftest import artifacts_dir

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve ``app`` with waitress on a free loopback port; yields the base URL."""
    server = create_server(app, host="127.0.0.1", port=0, threads=8, ident="maosic-web-test")
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.run, name="web-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # Stop the loop from its own thread: closing the sockets from here while it waits in
        # select() can make it fail with EBADF (an unhandled thread exception in one CI run).
        def stop() -> None:
            server.task_dispatcher.shutdown()
            wasyncore.close_all(server._map)  # the loop ends when its map is empty

        server.trigger.pull_trigger(stop)
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ConsoleWatch:
    """Collects console errors and uncaught page exceptions; tests assert it stays empty."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error at {message.location}: {message.text}")


def screenshot(page: Page, name: str) -> Path:
    path = artifacts_dir() / f"web-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    # Signed in once the site has left the login page: a goto before then races the POST and
    # lands on the login page again (seen under load).
    page.wait_for_url(lambda url: "/login" not in url, timeout=15_000)
