"""Browser tests of tuning on a small map (fake encoder, ~400 rows): stepping the budget
sliders with the arrow keys does not rerun the page until *Apply* (issue 14 A3), the
Total box follows the per-cluster sliders, and toggling "Highlight on map" keeps the
drawn box on the chart with its count (issue 14 A7).

Timings go to stdout (``-s``) and to $SIEVE_SHOTS/tuning.json."""

from __future__ import annotations

import json
import time

import pytest

from tests.app_fixtures import build_small_map
from tests.browser.helpers import (
    GD,
    SHOTS,
    VIEWPORT,
    axis_ranges,
    drag_mode,
    plotly_selections,
    running_app,
    to_px,
    wait_chart,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    ws, data = build_small_map(tmp_path_factory.mktemp("tuning") / "ws")
    with running_app({"SIEVE_WORKSPACE": str(ws.root), "SIEVE_NO_WARMUP": "1"}, "streamlit-tuning.log") as url:
        yield ws, data, url
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "tuning.json").write_text(json.dumps(TIMINGS, indent=2))


@pytest.fixture(scope="module")
def page(browser, app):
    ctx = browser.new_context(viewport=VIEWPORT)
    p = ctx.new_page()
    p.set_default_timeout(60_000)
    yield p
    ctx.close()


def idle(page, timeout: float = 60_000) -> None:
    """Wait until the app is not running a script."""
    page.wait_for_function("() => { const a = document.querySelector('[data-testid=stApp]');"
                           " return a && a.getAttribute('data-test-script-state') === 'notRunning'; }",
                           timeout=timeout)


def allocation(page) -> dict[int, int]:
    """The per-cluster allocation table (st.table): cluster id -> budget."""
    rows = page.evaluate("""() => { const t = document.querySelector('[data-testid=stTable] table');
        if (!t) return null;
        return [...t.querySelectorAll('tr')].map(r => [...r.querySelectorAll('th, td')].map(c => c.innerText.trim())); }""")
    if not rows or "budget" not in rows[0]:
        return {}
    col = rows[0].index("budget")
    return {int(r[0]): int(r[col]) for r in rows[1:] if r and r[0].lstrip("-").isdigit()}


def wait_total(page, want: int, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while sum(allocation(page).values()) != want:
        if time.time() > deadline:
            raise AssertionError(f"allocation never summed to {want}: {allocation(page)}")
        time.sleep(0.1)


def wait_any_total(page, timeout: float = 60.0) -> int:
    """The allocation's total once the table is drawn."""
    deadline = time.time() + timeout
    while not allocation(page):
        if time.time() > deadline:
            raise AssertionError("no allocation table")
        time.sleep(0.1)
    idle(page)
    return sum(allocation(page).values())


def slider_value(page, name: str) -> int:
    return int(page.get_by_role("slider", name=name).first.evaluate("e => e.getAttribute('aria-valuenow') ?? e.value"))


def wait_slider(page, name: str, want: int, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while slider_value(page, name) != want:
        if time.time() > deadline:
            raise AssertionError(f"slider {name!r} never reached {want}")
        time.sleep(0.02)


def metric(page, label: str) -> str:
    return page.evaluate("""(label) => { for (const m of document.querySelectorAll('[data-testid=stMetric]')) {
        const l = m.querySelector('[data-testid=stMetricLabel]'); const v = m.querySelector('[data-testid=stMetricValue]');
        if (l && v && l.innerText.trim() === label) return v.innerText.trim(); } return null; }""", label)


def test_budget_arrow_steps_do_not_rerun_until_apply(page, app):
    _, _, url = app
    page.goto(url + "/budget")
    page.get_by_role("heading", name="Budget").first.wait_for()
    start = wait_any_total(page)
    slider = page.get_by_role("slider", name="Total budget (rows)")
    slider.focus()
    t0 = time.perf_counter()
    for i in range(10):
        page.keyboard.press("ArrowRight")
        wait_slider(page, "Total budget (rows)", start + i + 1)
    steps_s = time.perf_counter() - t0
    # No rerun happened: the allocation is still the old one.
    time.sleep(0.5)
    assert sum(allocation(page).values()) == start
    page.get_by_role("button", name="Apply").first.click()
    wait_total(page, start + 10)
    idle(page)
    total_s = time.perf_counter() - t0
    assert page.get_by_role("spinbutton", name="Rows", exact=True).input_value() == str(start + 10)
    TIMINGS.update(budget_10_steps_s=round(steps_s, 2), budget_10_steps_then_applied_s=round(total_s, 2))
    print(f"10 arrow steps: {steps_s:.2f} s; with Apply and the one rerun: {total_s:.2f} s")


def test_sliders_mode_total_follows_cluster_sliders(page, app):
    page.get_by_text("Sliders", exact=True).first.click()
    idle(page)
    first = page.get_by_role("slider", name="0: ").first  # cluster 0's slider
    first.wait_for()
    before = wait_any_total(page)  # the table may not be drawn yet right after the mode switch
    first.focus()
    t0 = time.perf_counter()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    time.sleep(0.3)
    page.get_by_role("button", name="Apply").last.click()
    wait_total(page, before + 3)
    idle(page)
    TIMINGS["cluster_slider_3_steps_applied_s"] = round(time.perf_counter() - t0, 2)
    assert slider_value(page, "Total budget (rows)") == before + 3
    assert page.get_by_role("spinbutton", name="Rows", exact=True).input_value() == str(before + 3)
    page.get_by_text("Automatic", exact=True).first.click()
    idle(page)


def test_highlight_keeps_the_drawn_box_and_its_count(page, app):
    _, data, url = app
    page.goto(url + "/map")
    wait_chart(page)
    page.get_by_label("Search texts (case-insensitive)").fill("python")
    page.keyboard.press("Enter")
    idle(page)
    wait_chart(page)
    (xa, xb), (ya, yb) = axis_ranges(page)
    drag_mode(page, "select")
    a = to_px(page, xa + 0.1 * (xb - xa), ya + 0.1 * (yb - ya))
    b = to_px(page, xa + 0.7 * (xb - xa), ya + 0.7 * (yb - ya))
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=8)
    page.mouse.up()
    page.wait_for_function("() => { for (const m of document.querySelectorAll('[data-testid=stMetric]'))"
                           " if (m.innerText.includes('Selected rows') && !/\\n0$/.test(m.innerText.trim())) return true;"
                           " return false; }")
    idle(page)
    count = metric(page, "Selected rows")
    assert count not in (None, "0")
    assert len([s for s in plotly_selections(page) if s.get("type") == "rect"]) == 1
    page.get_by_text("Highlight on map").click()
    idle(page)
    wait_chart(page)
    page.wait_for_function(f"() => {GD}.data.some(t => t.name === 'search matches')")
    assert metric(page, "Selected rows") == count
    rects = [s for s in plotly_selections(page) if s.get("type") == "rect"]
    assert len(rects) == 1, plotly_selections(page)
    page.screenshot(path=str(SHOTS / "tuning-highlight.png"), full_page=True)
