"""Retake the README's screenshots of the app: ``python -m bench.screenshots --out docs``.

Serves ``app.py`` on a fresh workspace (a temporary folder), lets the Data page load the
bundled sample (sample_data/prompts.csv, its default), clicks *Compute map* with the
default settings, and drives Debian's Chromium (``/usr/bin/chromium``) through Playwright,
as tests/browser does, to save 1400-px-wide PNGs: screenshot-data.png, screenshot-map.png
(cluster names on the map), screenshot-search.png (Search by meaning, results ringed),
screenshot-colour.png (colour by ``topic``; the linked summary bars of the search results
against all rows), screenshot-curate.png (Curate clusters after a rename),
screenshot-budget.png and screenshot-export.png.  screenshot-scale.png is not retaken.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    GD,
    goto,
    running_app,
    wait_chart,
    wait_metric,
)


def _idle(page) -> None:
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-script-state') === 'notRunning'", timeout=120_000)
    time.sleep(1.0)


def _shot(page, out: Path, name: str, height: int = 1000, at_map: bool = False) -> None:
    """Save the viewport (1400 x ``height``); ``at_map``: scrolled so the Colour-by box and the map are on top."""
    page.set_viewport_size({"width": 1400, "height": height})
    time.sleep(1.0)
    if at_map:
        page.get_by_test_id("stSelectbox").filter(has_text="Colour by").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        time.sleep(0.8)
    page.screenshot(path=str(out / f"screenshot-{name}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})
    print(f"saved {out / f'screenshot-{name}.png'}", flush=True)


def _compute(page) -> None:
    goto(page, "Map")
    compute = page.get_by_role("button", name="Compute map")
    compute.wait_for(timeout=120_000)
    _idle(page)
    compute.click()
    page.get_by_role("button", name="Stop").wait_for(timeout=60_000)
    print("computing the map…", flush=True)
    wait_metric(page, "Selected rows", lambda v: v == "0", timeout=900_000)
    wait_chart(page)


def _search(page, out: Path) -> None:
    page.get_by_role("tab", name="Search by meaning").click()
    page.get_by_role("textbox", name="Search by meaning").fill("how to cook rice without it getting sticky")
    page.get_by_role("button", name="Search", exact=True).click()
    wait_metric(page, "Rows found", lambda v: int(v) > 0, timeout=120_000)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'search matches')")
    _shot(page, out, "search", 1500, at_map=True)
    page.get_by_role("button", name="Select these rows").click()  # the selection the summaries compare
    wait_metric(page, "Selected rows", lambda v: v != "0", timeout=60_000)
    _idle(page)


def _colour(page, out: Path) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text="Colour by").locator("input").click()
    page.keyboard.type("topic")
    page.keyboard.press("Enter")
    _idle(page)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}._fullLayout.legend && {GD}._fullLayout.legend.title.text === 'topic'")
    _idle(page)
    summaries = page.get_by_test_id("stMultiSelect").filter(has_text="Summaries of").locator("input")
    summaries.click()
    page.keyboard.type("topic")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    _idle(page)
    _shot(page, out, "colour", 1700, at_map=True)


def _curate(page, out: Path) -> None:
    page.get_by_role("tab", name="Curate clusters").click()
    page.get_by_role("textbox", name="New name").fill('python scripts')
    page.get_by_role("button", name="Rename", exact=True).click()
    wait_metric(page, "Cluster edits", lambda v: v == "1", timeout=120_000)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'python scripts')")
    _idle(page)
    page.get_by_role("tab", name="Curate clusters").click()  # the rerun shows the first tab again
    _idle(page)
    _shot(page, out, "curate", 1900, at_map=True)


def take(out: Path) -> None:
    """Serve the app on a fresh workspace and save the screenshots under ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sieve-shots-") as tmp, \
            running_app({"SIEVE_WORKSPACE": str(Path(tmp) / "ws")}, "streamlit-screenshots.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_selector("[data-testid=stApp]")
        wait_metric(page, "Rows", lambda v: int(v) > 0, timeout=120_000)
        _idle(page)
        _shot(page, out, "data")
        _compute(page)
        _idle(page)
        _shot(page, out, "map", 1100, at_map=True)
        _search(page, out)
        _colour(page, out)
        _curate(page, out)
        goto(page, "Budget")
        _idle(page)
        _shot(page, out, "budget", 1900)
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
