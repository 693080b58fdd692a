"""Takes the README's screenshots of a running site with the demo data (not a test).

Usage, with the site served on BASE_URL (``make run`` serves http://127.0.0.1:8000)::

    python -m tests.browser.screenshots --base-url http://127.0.0.1:8000 --out docs

It signs in as the demo reader and saves ``screenshot-home.png`` (and the book page, the book
list and "My reading") with Debian's Chromium. Covers on other hosts are loaded when the
network allows, otherwise their generated placeholder tiles show.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

from .conftest import CHROMIUM, CHROMIUM_ARGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", default="docs", type=Path)
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-reader")
    parser.add_argument("--full-page", action="store_true", help="the whole home page, not the first screen")
    parser.add_argument("--offline", action="store_true", help="block every host but the site (placeholder covers)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(base_url=args.base_url, viewport={"width": 1280, "height": 900},
                                      device_scale_factor=1)
        if args.offline:
            host = args.base_url.split("//", 1)[1].split("/", 1)[0]
            context.route(lambda url: host not in url, lambda route: route.abort())
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", args.username)
        page.fill("#id_password", args.password)
        page.locator("form.stack-form button[type=submit]").click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(args.out / "screenshot-home.png"), full_page=args.full_page)
        print(args.out / "screenshot-home.png")
        first_book = page.locator('[data-section="picks"] .card[data-item^="book-"] a').first
        if first_book.count():
            first_book.click()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(args.out / "screenshot-book.png"), full_page=False)
            print(args.out / "screenshot-book.png")
        page.goto("/articles/")
        page.locator('[data-section="list"] .row__title a').first.click()
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(args.out / "screenshot-article.png"), full_page=False)
        print(args.out / "screenshot-article.png")
        for name, url in (("books", "/books/"), ("my-reading", "/my-reading/")):
            page.goto(url)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(args.out / f"screenshot-{name}.png"), full_page=False)
            print(args.out / f"screenshot-{name}.png")
        browser.close()


if __name__ == "__main__":
    main()
