"""Browser fixtures: the app served from a real server thread, and Debian's Chromium driven by
Playwright's sync API (pytest-playwright is not used).

When Chromium (or Playwright, or axe-core for the accessibility check) is missing, the tests
that need it skip with a message; with REQUIRE_BROWSER=1 (set by .ci/run) they fail instead.
Chromium is Debian's `chromium` package (/usr/bin/chromium); Playwright never downloads one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = HERE / "screenshots"
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
# Playwright's default timeouts are 30 s; on loopback anything slower than this is a bug.
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test is `slow` (seconds each: a real server, Chromium, screenshots)."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.slow)


def require_browser() -> bool:
    return os.environ.get("REQUIRE_BROWSER", "").strip().lower() in {"1", "true", "yes", "on"}


def missing(reason: str) -> None:
    """Skip, or fail when the browser tests are required (CI)."""
    if require_browser():
        pytest.fail(f"{reason} (REQUIRE_BROWSER=1 is set, so this fails instead of skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed: pip install playwright")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        missing(
            f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)"
        )
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test app (tests/conftest.py's `app`, same test database) on 127.0.0.1, a free port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def base_url(live_server: str) -> str:
    return live_server


@pytest.fixture
def new_context(browser: Any, base_url: str) -> Iterator[Any]:
    """Make browser contexts (fresh storage each) that are closed after the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("base_url", base_url)
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def context(new_context: Any) -> Any:
    return new_context()


def watch(page: Any) -> Any:
    """Record uncaught errors, console errors (CSP refusals among them) and failed responses
    on `page.console_errors` and `page.bad_responses`, for `assert_no_page_errors`."""
    page.console_errors = []
    page.bad_responses = []

    def on_console(msg: Any) -> None:
        # "Failed to load resource" is reported below, with its address (or was meant to fail)
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            page.console_errors.append(msg.text)

    def on_response(response: Any) -> None:
        if response.status >= 400:
            page.bad_responses.append(f"{response.status} {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: page.console_errors.append(f"uncaught: {exc}"))
    page.on("response", on_response)
    return page


@pytest.fixture
def page(context: Any) -> Any:
    return watch(context.new_page())


@pytest.fixture(scope="session")
def axe_source() -> str:
    """Asked for by every test that injects axe-core (AXE_JS), so that without it they skip,
    or fail with REQUIRE_BROWSER=1, as they do without Chromium."""
    if not AXE_JS.is_file():
        missing(f"axe-core not found at {AXE_JS}: run `make browser-deps` (needs npm)")
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
