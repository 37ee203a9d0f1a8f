"""Two browser sessions (two Playwright contexts) on one workspace at the same time:
each keeps its own selection and budget, both run stages at once, and neither sees a
lock error or the other's state."""

from __future__ import annotations


import pytest

from tests.app_fixtures import build_small_map
from tests.browser.helpers import (
    axis_ranges,
    drag_mode,
    goto,
    metric_value,
    open_app,
    plotly_selections,
    running_app,
    to_px,
    wait_chart,
    wait_metric,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    ws, data = build_small_map(tmp_path_factory.mktemp("two-sessions") / "ws")
    env = {"SIEVE_WORKSPACE": str(ws.root)}  # default lock settings: sessions of one server queue (issue 15 item 11)
    with running_app(env, "streamlit-two-sessions.log") as url:
        yield ws, data, url


def _open(browser, url):
    ctx, page = open_app(browser, url, timeout=60_000, accept_downloads=True)
    goto(page, "Map")
    wait_chart(page)
    return ctx, page


def _box(page, fx0, fx1):
    """Box-select the horizontal band [fx0, fx1] of the axes (fractions), full height."""
    (xa, xb), (ya, yb) = axis_ranges(page)
    drag_mode(page, "select")
    a = to_px(page, xa + fx0 * (xb - xa), ya + 0.02 * (yb - ya))
    b = to_px(page, xa + fx1 * (xb - xa), ya + 0.98 * (yb - ya))
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move(*b, steps=8)
    page.mouse.up()
    got = int(wait_metric(page, "Selected rows", lambda v: v != "0"))
    rect = [s for s in plotly_selections(page) if s.get("type") == "rect"][0]
    return got, rect


def _errors(page) -> list[str]:
    return page.evaluate(
        "() => [...document.querySelectorAll('[data-testid=stException], [data-testid=stAlert]')]"
        ".map(e => e.innerText).filter(t => /error|lock|conflict|busy/i.test(t))")


def test_two_sessions_keep_their_own_state_and_compute_at_once(browser, shared):
    from core.stages.cluster import ClusterParams
    from core.explore import points_in_box
    from core.engines.local import build_map, current_map, load_map
    from tests.fakes import BagOfWordsEncoder

    ws, data, url = shared
    ctx_a, a = _open(browser, url)
    ctx_b, b = _open(browser, url)
    try:
        # each session selects its own half of the map
        got_a, ra = _box(a, 0.02, 0.48)
        got_b, rb = _box(b, 0.52, 0.98)
        assert got_a == int(points_in_box(data.xy, ra["x0"], ra["x1"], ra["y0"], ra["y1"]).sum())
        assert got_b == int(points_in_box(data.xy, rb["x0"], rb["x1"], rb["y0"], rb["y1"]).sum())
        assert got_a != got_b
        assert int(metric_value(a, "Selected rows")) == got_a  # B's selection did not leak into A

        # both change a clustering parameter and compute at the same moment
        for page, mcs in ((a, 9), (b, 12)):
            page.get_by_text("Advanced settings").first.click()
            box = page.get_by_label("min_cluster_size (0 = auto")
            box.fill(str(mcs))
            box.press("Enter")
            page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                                   ".getAttribute('data-test-script-state') === 'notRunning'")
        a.get_by_role("button", name="Compute map").click()
        b.get_by_role("button", name="Compute map").click()
        for page in (a, b):
            page.get_by_text("Last run").first.wait_for(timeout=300_000)
            wait_chart(page)
        assert _errors(a) == [] and _errors(b) == []

        # each session now shows the map of its own parameters
        _, params = current_map(ws)
        for page, mcs in ((a, 9), (b, 12)):
            p = type(params)(params.embed, params.project, ClusterParams(min_cluster_size=mcs), params.label)
            expected = load_map(ws, build_map(ws, p, encoder=BagOfWordsEncoder()))
            n_clusters = len([c for c in expected.clusters if c.id >= 0])
            caption = page.get_by_text("Map:").first.inner_text()
            assert f"{n_clusters} clusters" in caption, (mcs, caption)

        # and its own budget
        goto(a, "Budget")
        goto(b, "Budget")
        for page, n in ((a, 37), (b, 81)):
            box = page.get_by_label("Rows", exact=True)
            box.fill(str(n))
            box.press("Enter")
        assert wait_metric(a, "Rows in the subset", lambda v: v == "37") == "37"
        assert wait_metric(b, "Rows in the subset", lambda v: v == "81") == "81"
        assert _errors(a) == [] and _errors(b) == []
    finally:
        ctx_a.close()
        ctx_b.close()


def test_selecting_every_drawn_point_still_updates_the_app(browser, shared):
    """A box around the whole plot sends one event with every drawn point; the app must
    receive it (server.maxWidgetStateSize) and count every row."""
    ws, data, url = shared
    ctx, page = _open(browser, url)
    try:
        got, rect = _box(page, 0.01, 0.99)  # the axes are padded, so this covers every point
        assert got == len(data.row_ids)
        assert _errors(page) == []
    finally:
        ctx.close()
