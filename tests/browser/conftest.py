"""A real hub on 127.0.0.1 driven by Debian's chromium through Playwright (Python, async API).

Chromium is /usr/bin/chromium (``scripts/setup --test-tools``, run by ``scripts/test``, installs it
as root); Playwright never downloads a browser here. Without chromium these tests are skipped —
except with CI=true, where they fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hub.config import Config

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--no-proxy-server"]
TIMEOUT_MS = 10_000


def _browser_unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (scripts/setup --test-tools installs it when run as root)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    reason = _browser_unavailable()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the browser tests cannot run: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The browser tests drive the UI on one database, SQLite (what a user starts with); every rule of
    the database is tested on both by tests/integration. The screen-pop runs on both
    (test_screenpop.py). docs/decisions.md: "The browser tests run on SQLite"."""
    return str(request.param)


@pytest.fixture
def app(config: Config) -> web.Application:
    from hub.app import create_app

    return create_app(config)


@pytest.fixture
async def hub_url(app: web.Application, aiohttp_server: Any) -> str:
    server = await aiohttp_server(app, host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(chromium_path), headless=True,
                                                   args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Any, hub_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A page that fails the test on any browser error, except those the test module names in
    ``EXPECTED_BROWSER_ERRORS`` (regular expressions matched against the whole line)."""
    expected = getattr(request.module, "EXPECTED_BROWSER_ERRORS", ())
    context = await browser.new_context(base_url=hub_url, locale="ru-RU",
                                        viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Console errors too (a Content-Security-Policy refusal shows up only there), and every failed
    # file or fragment; a page answered with an error status (a refused login) is the test's business.
    page.on("console", lambda msg: errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document" else None)
    try:
        yield page
    finally:
        await context.close()
    unexpected = [e for e in errors if not any(re.fullmatch(pattern, e) for pattern in expected)]
    assert not unexpected, f"errors in the browser: {errors}"
