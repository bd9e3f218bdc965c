"""Browser fixtures: Debian's Chromium, headless, driven by Playwright's async API.

The browser is the system's (``/usr/bin/chromium``, installed by ``make system-deps``;
``GM_CHROMIUM`` points elsewhere): Playwright never downloads one. Each test gets its own
browser on its own event loop (the one that runs the server), with a fresh temporary
profile. Any script error or Content-Security-Policy violation on a page fails the test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.conftest import LiveServer

CHROMIUM = os.environ.get("GM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
HAS_CHROMIUM = Path(CHROMIUM).exists()
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Where screenshots go when asked for (``make screenshots`` sets it to docs/).
SCREENSHOTS = os.environ.get("GM_SCREENSHOTS")
# Records every WebSocket the page opens, so that a test can cut one and read the URLs.
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      window.__sockets.push(this);
    }
  };
})();
"""


@dataclass
class Browsing:
    """A browser context with the page errors it has seen."""

    browser: Browser
    context: BrowserContext
    errors: list[str] = field(default_factory=list)

    async def open(self, server: LiveServer, path: str) -> Page:
        """A new page at ``path`` of ``server``, its errors recorded."""
        page = await self.context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)
        await page.goto(server.url + path)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.errors.append(message.text)


@pytest.fixture
async def browsing() -> AsyncIterator[Browsing]:
    """A headless Chromium for one test; fails the test on page errors or CSP violations."""
    if not HAS_CHROMIUM:
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make system-deps` (Debian's chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.add_init_script(TRACK_SOCKETS)
        session = Browsing(browser, context)
        try:
            yield session
        finally:
            await context.close()
            await browser.close()
        assert not session.errors, session.errors


async def screenshot(page: Page, name: str) -> None:
    """Save a full-page PNG to ``$GM_SCREENSHOTS/name`` when screenshots are asked for."""
    if not SCREENSHOTS:
        return
    # Playwright creates the folder.
    await page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=True)
