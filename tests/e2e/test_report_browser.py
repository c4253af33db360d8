"""report.html in a real headless Chromium: it loads cleanly, its images decode, its tables sort."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("playwright")

from tests.unit.report._store import build_store  # noqa: E402
from xaibench.report import render, screenshot  # noqa: E402
from xaibench.report.browser import chromium, chromium_path  # noqa: E402

if chromium_path() is None:
    pytest.skip("no Chromium installed (set XAIBENCH_CHROMIUM)", allow_module_level=True)

RUNTIME_CAPTION = "cost of the explanation alone"
LEADERBOARD_CAPTION = "configurations ranked"


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    build_store(root, failed={("keras", "permutation")})
    render(root, formats=("html",))
    return root / "report.html"


def _click(page, caption: str, header: str) -> None:
    table = page.locator("table", has=page.locator(f"caption:has-text('{caption}')"))
    table.locator("th", has_text=header).click()


def _column(page, caption: str, header: str) -> list[str]:
    """The texts of column ``header`` of the table whose caption contains ``caption``."""
    return page.evaluate(
        """([caption, header]) => {
            const table = [...document.querySelectorAll("table")]
                .find(t => t.caption.textContent.includes(caption));
            const column = [...table.tHead.rows[0].cells]
                .findIndex(th => th.textContent.trim() === header);
            return [...table.tBodies[0].rows].map(r => r.cells[column].textContent.trim());
        }""", [caption, header])


def test_report_in_a_browser(report):
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(report.as_uri(), wait_until="load")
        assert errors == []

        images = page.eval_on_selector_all(
            "img", "images => images.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(images) == 8
        assert all(complete and width > 0 and height > 0 for complete, width, height in images)

        before = _column(page, RUNTIME_CAPTION, "evals / image")
        _click(page, RUNTIME_CAPTION, "evals / image")
        ascending = _column(page, RUNTIME_CAPTION, "evals / image")
        assert [float(v) for v in ascending] == sorted(float(v) for v in before)
        assert sorted(before) != ascending  # as text, "250" would come before "3"
        _click(page, RUNTIME_CAPTION, "evals / image")
        assert _column(page, RUNTIME_CAPTION, "evals / image") == ascending[::-1]
        _click(page, RUNTIME_CAPTION, "explainer")
        explainers = _column(page, RUNTIME_CAPTION, "explainer")
        assert explainers == sorted(explainers) and len(set(explainers)) > 1

        # "0.51 [0.49, 0.53]" sorts by its leading number: a natural (digit-run) text order
        # would put 0.31 after 0.5
        _click(page, LEADERBOARD_CAPTION, "abpc ↑")
        means = [float(v.split(" [")[0]) for v in _column(page, LEADERBOARD_CAPTION, "abpc ↑")]
        assert means == sorted(means)
        assert errors == []


def test_screenshot(report, tmp_path):
    png = screenshot(report, tmp_path / "report_screenshot.png", width=1000)
    from matplotlib.image import imread

    height, width, _ = imread(png).shape
    assert width == 1000 and height > 2000  # the full page, not the viewport
