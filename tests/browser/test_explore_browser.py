"""The Map page's exploration tools in a real browser, on a small map made with the real
packaged model: search by meaning (ring on the map, pin), curating clusters (rename),
colour by a column, and a click on a summary bar filtering the selection."""

from __future__ import annotations

import time

import pytest

from core.engines.local import load_map
from tests.browser.helpers import (
    GD,
    SHOTS,
    goto,
    open_app,
    running_app,
    wait_chart,
    wait_metric,
)
from tests.fakes import build_topic_map

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def explore_app(tmp_path_factory):
    ws, table = build_topic_map(tmp_path_factory.mktemp("explore-browser"))
    topics = table.column("topic").to_pylist()
    with running_app({"SIEVE_WORKSPACE": str(ws.root), "SIEVE_NO_WARMUP": "1"}, "streamlit-explore.log") as url:
        yield ws, load_map(ws), topics, url


@pytest.fixture(scope="module")
def page(browser, explore_app):
    ctx, p = open_app(browser, explore_app[3], timeout=60_000)
    goto(p, "Map")
    wait_chart(p)
    yield p
    ctx.close()


def _trace_names(page) -> list[str]:
    return page.evaluate(f"() => {GD}.data.map(t => t.name)")


def _idle(page) -> None:
    page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                           ".getAttribute('data-test-script-state') === 'notRunning'")
    time.sleep(0.5)


def test_search_by_meaning_rings_rows_and_pins_them(page, explore_app):
    ws, data, topics, _ = explore_app
    page.get_by_role("tab", name="Search by meaning").click()
    page.get_by_role("textbox", name="Search by meaning").fill("chords and scales to practise on the guitar")
    page.get_by_role("button", name="Search", exact=True).click()
    n = int(wait_metric(page, "Rows found", lambda v: int(v) > 0))
    assert n == 20
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'search matches')")
    ringed = page.evaluate(f"() => {GD}._fullData.find(t => t.name === 'search matches')._length")
    assert ringed == 20  # every row is drawn on a 200-row map
    page.get_by_role("button", name="Pin these rows").click()
    wait_metric(page, "Pinned rows", lambda v: v == "20")
    page.screenshot(path=str(SHOTS / "explore-search.png"), full_page=True)


def test_rename_a_cluster_shows_on_the_map(page, explore_app):
    page.get_by_role("tab", name="Curate clusters").click()
    page.get_by_role("textbox", name="New name").fill("my own name")
    page.get_by_role("button", name="Rename", exact=True).click()
    wait_metric(page, "Cluster edits", lambda v: v == "1")
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'my own name')")
    from core.engines.local import load_map

    assert "my own name" in load_map(explore_app[0]).cluster_names.values()


def test_colour_by_a_column_and_a_summary_bar_filters(page, explore_app):
    from core.summaries import bar_mask, text_length_view

    ws, data, topics, _ = explore_app
    page.get_by_test_id("stSelectbox").filter(has_text="Colour by").locator("input").click()
    page.keyboard.type("source")
    page.keyboard.press("Enter")
    _idle(page)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.layout.legend && {GD}._fullLayout.legend.title.text === 'source'")
    names = _trace_names(page)
    assert "forum" in names  # one legend entry per value of the column
    # a click on the first text-length bar selects the rows in that bin
    _idle(page)
    bar = page.locator(".st-key-sieve-summaries .js-plotly-plot .point path").first
    bar.scroll_into_view_if_needed()
    time.sleep(0.5)
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    got = int(wait_metric(page, "Selected rows", lambda v: v != "0"))
    from core.stages.dataset import load_texts

    ids, texts, _ = load_texts(ws)
    want = int(bar_mask(text_length_view(texts), 0).sum())
    assert got == want
    page.screenshot(path=str(SHOTS / "explore-colour-summaries.png"), full_page=True)
