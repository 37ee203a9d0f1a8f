"""Retake the README's screenshots of the app: ``python -m bench.screenshots --out docs``.

Serves ``app.py`` on a fresh workspace (a temporary folder), lets the Data page load the
bundled sample (sample_data/prompts.csv, its default), clicks *Compute map* with the
default settings, and drives Debian's Chromium through Playwright (``/usr/bin/chromium``,
see /work/shared/BROWSER_TESTING.md) to save, at 1400 px wide:

screenshot-data.png, screenshot-map.png (cluster names on the map), screenshot-search.png
(Search by meaning, results ringed), screenshot-colour.png (colour by ``topic`` and the
linked summary bars, after a click on a bar), screenshot-curate.png (Curate clusters after
a rename), screenshot-budget.png and screenshot-export.png.  screenshot-scale.png is kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.browser.test_browser import (
    CHROMIUM,
    GD,
    goto,
    running_app,
    wait_chart,
    wait_text,
)

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _idle(page) -> None:
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-script-state') === 'notRunning'", timeout=120_000)
    time.sleep(1.0)


def _shot(page, out: Path, name: str, height: int = 1000, full: bool = False) -> None:
    page.set_viewport_size({"width": 1400, "height": height})
    time.sleep(1.0)
    page.screenshot(path=str(out / f"screenshot-{name}.png"), full_page=full)
    page.set_viewport_size({"width": 1400, "height": 1000})
    print(f"saved {out / f'screenshot-{name}.png'}", flush=True)


def _top(page) -> None:
    page.evaluate("() => document.querySelectorAll('section, [data-testid=stMain]').forEach(e => e.scrollTo(0, 0))")
    page.mouse.wheel(0, -5000)
    time.sleep(0.5)


def _compute(page) -> None:
    goto(page, "Map")
    compute = page.get_by_role("button", name="Compute map")
    if compute.count():
        compute.click()
    wait_text(page, "selected_count", lambda v: v == "0", timeout=900_000)
    wait_chart(page)


def _search(page, out: Path) -> None:
    page.get_by_role("tab", name="Search by meaning").click()
    page.get_by_role("textbox", name="Search by meaning").fill("how to cook rice without it getting sticky")
    page.get_by_role("button", name="Search", exact=True).click()
    wait_text(page, "semantic_results", lambda v: int(v) > 0, timeout=120_000)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'search matches')")
    _top(page)
    _shot(page, out, "search", 1100)


def _colour(page, out: Path) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text="Colour by").locator("input").click()
    page.keyboard.type("topic")
    page.keyboard.press("Enter")
    _idle(page)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}._fullLayout.legend && {GD}._fullLayout.legend.title.text === 'topic'")
    _idle(page)
    bar = page.locator(".st-key-sieve-summaries .js-plotly-plot .point path").nth(2)
    bar.scroll_into_view_if_needed()
    time.sleep(0.5)
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_text(page, "selected_count", lambda v: v != "0", timeout=60_000)
    _idle(page)
    _top(page)
    _shot(page, out, "colour", 1100)


def _curate(page, out: Path) -> None:
    page.get_by_role("tab", name="Curate clusters").click()
    page.get_by_role("textbox", name="New name").fill("cooking questions")
    page.get_by_role("button", name="Rename", exact=True).click()
    wait_text(page, "edits", lambda v: v == "1", timeout=120_000)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'cooking questions')")
    _idle(page)
    _top(page)
    _shot(page, out, "curate", 1100)


def take(out: Path) -> None:
    """Serve the app on a fresh workspace and save the screenshots under ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sieve-shots-") as tmp, \
            running_app({"SIEVE_WORKSPACE": str(Path(tmp) / "ws")}, "streamlit-screenshots.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("[data-testid=stApp]")
        wait_text(page, "rows", lambda v: int(v) > 0, timeout=120_000)
        _idle(page)
        _shot(page, out, "data")
        _compute(page)
        _idle(page)
        _shot(page, out, "map", 1100)
        _search(page, out)
        _colour(page, out)
        _curate(page, out)
        goto(page, "Budget")
        _idle(page)
        _shot(page, out, "budget", 1100)
        goto(page, "Export")
        _idle(page)
        _shot(page, out, "export")
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs"), help="folder for the PNGs (default docs)")
    take(ap.parse_args().out)


if __name__ == "__main__":
    main()
