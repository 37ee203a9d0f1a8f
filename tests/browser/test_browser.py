"""Real-browser tests: Debian Chromium driven by Playwright (see /work/shared/BROWSER_TESTING.md).

One app server on a fresh workspace for the whole module; the tests run in order and
share one browser page (one Streamlit session), like a person clicking through:
Data -> Map (compute, stop, resume) -> box and lasso selections -> Budget slider -> Export.

Run: ``pytest tests/browser -m browser``.  Needs Debian's chromium (``make browser-deps``,
which ``make test`` runs first); without it these tests fail, they never skip.
Screenshots go to $SIEVE_SHOTS (default /tmp/sieve-shots), outside git.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tests.browser.helpers import (
    SHOTS,
    axis_ranges,
    drag_mode,
    goto,
    metric_value,
    open_app,
    plotly_selections,
    running_app,
    shot,
    to_px,
    wait_chart,
    wait_metric,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser") / "ws"


@pytest.fixture(scope="module")
def app_url(workspace):
    with running_app({"SIEVE_WORKSPACE": str(workspace)}, "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def ui(browser, app_url):
    """One page (one Streamlit session) shared by the tests of this module, in order."""
    context, page = open_app(browser, app_url, timeout=30_000, accept_downloads=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()


# -- helpers -----------------------------------------------------------------------------------


def load_map_here(workspace: Path):
    from core.engines.local import load_map
    from core.store.workspace import Workspace

    return load_map(Workspace(workspace))


# -- the flow ---------------------------------------------------------------------------------


def test_data_page_autoloads_sample(ui):
    v = wait_metric(ui, "Rows", lambda v: int(v) > 0, timeout=60_000)
    assert int(v) == 3000 or int(v) > 0
    assert "Bundled sample" in ui.locator("[data-testid=stRadio]").first.inner_text()
    shot(ui, "data", 1400)


def test_compute_map_stop_and_resume(ui, workspace):
    goto(ui, "Map")
    compute = ui.get_by_role("button", name="Compute map")
    compute.click()
    # Stop once the first 2048-row chunk is saved (progress beyond it), then resume.
    ui.wait_for_function("""() => [...document.querySelectorAll('[data-testid=stProgress]')].some(e => {
        const m = e.innerText.match(/\\(([\\d,]+)\\//); return m && parseInt(m[1].replace(/,/g, '')) > 2048; })""",
                         timeout=300_000)
    ui.get_by_role("button", name="Stop").click()
    ui.get_by_text("Stopped.").wait_for(timeout=60_000)
    assert "resume" in ui.get_by_text("Stopped.").inner_text()
    compute.click()
    wait_metric(ui, "Selected rows", lambda v: v == "0", timeout=300_000)
    wait_chart(ui)
    # The resumed run embedded only what the stopped one had not finished.
    caption = " ".join(ui.locator("[data-testid=stCaptionContainer]").all_inner_texts())
    assert "Last run" in caption and "2048 cached" in caption, caption
    data = load_map_here(workspace)
    n_clusters = len([c for c in data.clusters if c.id >= 0])
    assert metric_value(ui, "Clusters") == str(n_clusters)


def test_box_selection_matches_server_count(ui, workspace):
    from core.explore import points_in_box

    data = load_map_here(workspace)
    wait_chart(ui)
    (xa, xb), (ya, yb) = axis_ranges(ui)
    x0, x1 = xa + 0.15 * (xb - xa), xa + 0.6 * (xb - xa)
    y0, y1 = ya + 0.15 * (yb - ya), ya + 0.6 * (yb - ya)
    drag_mode(ui, "select")
    a, b = to_px(ui, x0, y0), to_px(ui, x1, y1)
    ui.mouse.move(*a)
    ui.mouse.down()
    ui.mouse.move(*b, steps=8)
    ui.mouse.up()
    got = int(wait_metric(ui, "Selected rows", lambda v: v != "0"))
    sel = [s for s in plotly_selections(ui) if s.get("type") == "rect"]
    assert len(sel) == 1
    s = sel[0]
    want = int(points_in_box(data.xy, s["x0"], s["x1"], s["y0"], s["y1"]).sum())
    assert got == want
    shot(ui, "map-box", 1400)


def _lasso_path(path: str) -> tuple[list[float], list[float]]:
    pts = path.strip("MZ").replace("M", "").split("L")
    xs, ys = zip(*[(float(p.split(",")[0]), float(p.split(",")[1])) for p in pts if p])
    return list(xs), list(ys)


def test_lasso_selection_matches_server_count(ui, workspace):
    from core.explore import points_in_lasso

    data = load_map_here(workspace)
    ui.get_by_role("button", name="Clear selection").click()
    wait_metric(ui, "Selected rows", lambda v: v == "0")
    wait_chart(ui)
    (xa, xb), (ya, yb) = axis_ranges(ui)
    cx, cy = (xa + xb) / 2, (ya + yb) / 2
    rx, ry = 0.35 * (xb - xa), 0.35 * (yb - ya)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    verts = [(cx + rx * np.cos(a) * (1 + 0.3 * np.sin(3 * a)), cy + ry * np.sin(a)) for a in t]
    drag_mode(ui, "lasso")
    px = [to_px(ui, x, y) for x, y in verts]
    ui.mouse.move(*px[0])
    ui.mouse.down()
    for p in px[1:] + [px[0]]:
        ui.mouse.move(*p, steps=4)
    ui.mouse.up()
    got = int(wait_metric(ui, "Selected rows", lambda v: v != "0"))
    sel = [s for s in plotly_selections(ui) if s.get("type") == "path"]
    assert len(sel) == 1
    xs, ys = _lasso_path(sel[0]["path"])
    want = int(points_in_lasso(data.xy, xs, ys).sum())
    assert got == want
    # Pin the lasso's rows; the budget must include them.
    ui.get_by_role("button", name="Pin selection").click()
    wait_metric(ui, "Pinned rows", lambda v: v == str(got))
    shot(ui, "map", 1500)


def test_budget_slider_changes_allocation(ui, workspace):
    from core.selection import DEFAULT_POLICY, DEFAULT_SOFT_NOISE, SelectParams, select

    ui.get_by_role("button", name="Clear pins").click()
    wait_metric(ui, "Pinned rows", lambda v: v == "0")
    goto(ui, "Budget")
    start = int(wait_metric(ui, "Rows in the subset", lambda v: int(v) > 0))
    slider = ui.get_by_role("slider", name="Total budget (rows)")
    slider.focus()
    for _ in range(5):
        ui.keyboard.press("ArrowRight")
    ui.get_by_role("button", name="Apply", exact=True).click()  # the total is a form: steps apply together
    total = int(wait_metric(ui, "Rows in the subset", lambda v: int(v) == start + 5))
    assert ui.get_by_role("spinbutton", name="Rows", exact=True).input_value() == str(total)
    data = load_map_here(workspace)
    # the page's default policy and soft noise (unclustered rows join their most likely cluster)
    alloc = select(data.labels, data.row_ids,
                   SelectParams(budget=total, policy=DEFAULT_POLICY, soft_noise_threshold=DEFAULT_SOFT_NOISE),
                   soft_labels=data.soft_labels, soft_strength=data.soft_strength).allocation
    # the table lists every group of the map, the unclustered one (emptied by soft noise) at 0
    want = {int(c): alloc.get(int(c), 0) for c in np.unique(data.labels)}
    got = {}
    deadline = time.time() + 20
    while time.time() < deadline:  # the table may still be the previous run's for a moment
        rows = ui.evaluate("""() => { const t = document.querySelector('[data-testid=stTable] table');
            if (!t) return null;
            return [...t.querySelectorAll('tr')].map(r => [...r.querySelectorAll('th, td')].map(c => c.innerText.trim())); }""")
        if rows and "budget" in rows[0]:
            col = rows[0].index("budget")
            got = {int(r[0]): int(r[col]) for r in rows[1:] if r and r[0].lstrip("-").isdigit()}
            if sum(got.values()) == total:
                break
        time.sleep(0.3)
    assert got == want and sum(got.values()) == total
    shot(ui, "budget", 1900)


def test_export_download_matches_manifest(ui, tmp_path):
    import pyarrow.parquet as pq

    total = int(metric_value(ui, "Rows in the subset"))
    goto(ui, "Export")
    ui.wait_for_function("""() => [...document.querySelectorAll('[data-testid=stMetric]')]
        .some(m => m.innerText.startsWith('Rows to export'))""")
    rows = ui.evaluate("""() => [...document.querySelectorAll('[data-testid=stMetric]')]
        .find(m => m.innerText.startsWith('Rows to export')).querySelector('[data-testid=stMetricValue]').innerText""")
    assert int(rows.replace(",", "")) == total
    with ui.expect_download() as dl:
        ui.get_by_role("button", name=f"Download sieve-subset-{total}.parquet", exact=True).click()
    path = tmp_path / "subset.parquet"
    dl.value.save_as(path)
    table = pq.read_table(path)
    assert table.num_rows == total
    with ui.expect_download() as dlm:
        ui.get_by_role("button", name=f"Download sieve-subset-{total}.parquet.manifest.json", exact=True).click()
    manifest = json.loads(Path(dlm.value.path()).read_text())
    assert sorted(table.column("sieve_row_id").to_pylist()) == manifest["selected_row_ids"]
    assert manifest["n_selected"] == total
    assert "sieve reproduce" in ui.locator("[data-testid=stCode]").first.inner_text()
    shot(ui, "export", 1400)
