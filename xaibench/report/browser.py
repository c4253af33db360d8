"""A headless Chromium for the HTML report (Playwright): screenshots, and the browser tests.

Needs the ``playwright`` package; the browser is ``$XAIBENCH_CHROMIUM``, else the first of
chromium, chromium-browser, google-chrome on the PATH, else Playwright's own download.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from xaibench.errors import ConfigError

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: flags for a headless browser that stays offline and quiet
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync")
_EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The Chromium to launch (see the module notes); None: Playwright's own."""
    return os.environ.get("XAIBENCH_CHROMIUM") or next(
        filter(None, map(shutil.which, _EXECUTABLES)), None)


@contextmanager
def chromium(executable_path: str | None = None) -> Iterator["Browser"]:
    """A headless Chromium (``executable_path`` or :func:`chromium_path`), closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ConfigError("the browser needs playwright: pip install playwright") from exc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable_path or chromium_path(),
                                             args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def screenshot(html_path: str | Path, png_path: str | Path, *, width: int = 1280,
               executable_path: str | None = None) -> Path:
    """Write a full-page PNG screenshot of the page ``html_path`` (e.g. a ``report.html``)
    ``width`` pixels wide; return ``png_path``."""
    html_path, png_path = Path(html_path).resolve(), Path(png_path)
    if not html_path.is_file():
        raise ConfigError(f"no page to screenshot at {html_path}")
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with chromium(executable_path) as browser:
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(html_path.as_uri(), wait_until="load")
        page.screenshot(path=str(png_path), full_page=True)
    return png_path
