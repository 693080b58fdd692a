"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against pytest-django's live server."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# See /work/shared/notes/facts.md: without the background-networking flags a closed network
# refuses Chromium's own connections many times over.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# Only the live server may be reached: covers on other hosts fail at once and show their placeholder.
EXTERNAL = re.compile(r"^https?://(?!127\.0\.0\.1|localhost)")


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (make test does).")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -r requirements.txt")
    # Playwright's sync API runs an event loop in this thread; the tests' ORM calls are still
    # synchronous, so Django's async-safety guard must not refuse them, for these tests only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def eager_tasks(settings):
    """Run the app's tasks inline, and skip content refreshes on item saves, so nothing is left queued."""
    from bre_site.celery import app

    settings.RECOMMENDATIONS = {**settings.RECOMMENDATIONS, "CONTENT_ON_SAVE": False, "REFRESH_DEBOUNCE_SECONDS": 0}
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def page(browser, live_server, eager_tasks):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    context.route(EXTERNAL, lambda route: route.abort())
    tab = context.new_page()
    yield tab
    context.close()


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (test-artifacts/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form.stack-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/$"))
