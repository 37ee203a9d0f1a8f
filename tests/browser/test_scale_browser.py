"""Real-browser test of the Map and Budget pages on the Ray engine, on a sharded map
(Chromium + Playwright).

The sharded map is built before the server starts, in this process and without Ray
(``core.engines.ray`` with ``local=True``, the app tests' bag-of-words encoder), over 3,000
generated rows fitted on a 1,500-row sample; the workspace has no in-memory map, so the pages
start on the Ray engine.  The browser draws only part of it (*Points drawn* is lowered to
600); a box dragged on the chart must select every row inside the box on the server, drawn or
not, and the Budget page's subset must include the pinned rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.helpers import (
    CHROMIUM,
    SHOTS,
    axis_ranges,
    drag_mode,
    goto,
    open_app,
    plotly_selections,
    running_app,
    shot,
    to_px,
    wait_chart,
    wait_metric,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N_ROWS = 3000


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    import pyarrow.parquet as pq

    from core.engines import ray as scale
    from core.stages.cluster import ClusterParams
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace
    from sample_data.generate import generate_rows
    from tests.fakes import BagOfWordsEncoder

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser-deps` (apt chromium) first"
    root = tmp_path_factory.mktemp("scale-browser")
    pq.write_table(generate_rows(N_ROWS, seed=3), root / "rows.parquet")
    ws = Workspace(root / "ws")
    ingest(ws, IngestParams(str(root / "rows.parquet"), TextSpec(column="text")))
    emb = scale.embed_shards(ws, scale.ScaleEmbedParams(model="test/hash-bow", shard_rows=1000),
                             encoder_factory=BagOfWordsEncoder, local=True)
    res = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(1500, 0, ProjectParams(n_neighbors=10, seed=1),
                                                               ClusterParams(min_cluster_size=15)), local=True)
    return ws, emb, res


@pytest.fixture(scope="module")
def page(browser, sharded):
    ws, _, _ = sharded
    with running_app({"SIEVE_WORKSPACE": str(ws.root), "SIEVE_NO_WARMUP": "1"}, "streamlit-scale.log") as url:
        context, pg = open_app(browser, url + "/map", timeout=30_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield pg
        context.close()


def test_box_on_a_partly_drawn_sharded_map_selects_every_row_inside_it(page, sharded):
    from core.engines import ray as scale

    ws, emb, res = sharded
    wait_chart(page)
    # The server's first visit was this deep link: app.py's navigation still runs (not
    # Streamlit's old pages/-directory mode, which would list every file in pages/), and it
    # has no At scale page: the sharded map is the Map page on the Ray engine.
    nav = page.locator("[data-testid=stSidebarNav]").inner_text()
    assert "At scale" not in nav and "Budget" in nav and "Map" in nav and "common" not in nav, nav
    assert page.get_by_role("radio", name="Sharded (Ray)").is_checked()
    drawn_input = page.get_by_role("spinbutton", name="Points drawn")
    drawn_input.fill("600")
    drawn_input.press("Enter")
    page.wait_for_timeout(500)
    wait_chart(page)
    n_drawn = page.evaluate("""() => { const gd = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');
        return gd._fullData.reduce((n, t) => n + t.x.length, 0); }""")
    assert n_drawn < res.n_rows

    (xa, xb), (ya, yb) = axis_ranges(page)
    x0, x1 = xa + 0.05 * (xb - xa), xa + 0.7 * (xb - xa)
    y0, y1 = ya + 0.05 * (yb - ya), ya + 0.7 * (yb - ya)
    drag_mode(page, "select")
    page.mouse.move(*to_px(page, x0, y0))
    page.mouse.down()
    page.mouse.move(*to_px(page, x1, y1), steps=8)
    page.mouse.up()
    got = int(wait_metric(page, "Selected rows (all shards)", lambda v: v != "0"))
    sel = [s for s in plotly_selections(page) if s.get("type") == "rect"]
    assert len(sel) == 1
    s = sel[0]
    bx0, bx1, by0, by1 = min(s["x0"], s["x1"]), max(s["x0"], s["x1"]), min(s["y0"], s["y1"]), max(s["y0"], s["y1"])
    want = scale.lasso_row_ids(res.folder, [bx0, bx1, bx1, bx0], [by0, by0, by1, by1])
    assert got == len(want)
    drawn_inside = page.evaluate(f"""() => {{ const gd = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');
        let n = 0; for (const t of gd._fullData) for (let i = 0; i < t.x.length; i++)
          if (t.x[i] >= {bx0} && t.x[i] <= {bx1} && t.y[i] >= {by0} && t.y[i] <= {by1}) n++; return n; }}""")
    assert got > drawn_inside  # rows that are not drawn were selected too

    page.get_by_role("button", name="Pin selection").click()
    wait_metric(page, "Pinned rows", lambda v: v == str(got))
    page.mouse.move(5, 5)  # no tooltip in the screenshot (docs/screenshot-scale.png)
    page.evaluate("() => document.querySelector('[data-testid=stMain]')?.scrollTo(0, 0)")
    shot(page, "scale", 1600)

    goto(page, "Budget")  # the engine chosen on the Map page holds there
    budget = page.get_by_role("spinbutton", name="Rows", exact=True)
    budget.wait_for(timeout=120_000)
    assert page.get_by_text("Engine: Sharded (Ray)").count() == 1
    budget.fill(str(got + 100))
    page.get_by_role("button", name="Apply", exact=True).click()  # the total is a form, as on a local map
    wait_metric(page, "Rows in the subset", lambda v: v == str(got + 100), timeout=60_000)
    alerts = page.evaluate("() => [...document.querySelectorAll('[data-testid=stAlert]')].map(e => e.innerText)")
    assert not [a for a in alerts if "rror" in a], alerts
    shot(page, "scale-budget", 1800)
