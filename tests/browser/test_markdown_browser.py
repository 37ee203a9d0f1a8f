"""Issue 15 item 8 in a real browser: column names and user input shaped like markdown
images and links never make the browser fetch anything, and never become <img>/<a>.

A column named ``![x](http://127.0.0.1:PORT/img.png)`` made the browser fetch that image
from st.error.  Here a small HTTP server plays the remote host and records every request
it gets; Playwright records every request the page makes.  The test walks the Data page
(preview, column pickers opened, a template error that lists the columns), the Map page
(a SQL error quoting the names) and the Budget page (score and strata pickers opened),
and checks after each step that the host saw nothing and the DOM holds no element
pointing at it.
"""

from __future__ import annotations

import http.server
import threading
import time

import pyarrow as pa
import pytest

from tests.fakes import BagOfWordsEncoder
from tests.browser.helpers import (
    SHOTS,
    VIEWPORT,
    free_port,
    goto,
    running_app,
)
from tests.fakes import write_table

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def evil_host():
    """A local HTTP server standing in for the attacker's host; yields (base url, request paths)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, evil_host):
    """A workspace whose dataset (and map) has columns named like a markdown image and link,
    and a data folder holding the same table as a CSV."""
    from core.stages.cluster import ClusterParams
    from core.stages.embed import EmbedParams
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.engines.local import MapParams, build_map
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace
    from sample_data.generate import generate_rows

    base, _ = evil_host
    img, link = f"![x]({base}/img.png)", f"[lnk]({base}/link)"
    root = tmp_path_factory.mktemp("markdown")
    rows = generate_rows(300, seed=5).select(["text"])
    n = rows.num_rows
    table = rows.append_column(img, pa.array([float(i % 7) for i in range(n)])) \
                .append_column(link, pa.array([["a", "b", "c"][i % 3] for i in range(n)]))
    data = root / "data"
    write_table(table, data / "hostile.csv")
    ws = Workspace(root / "ws")
    ingest(ws, IngestParams(str(data / "hostile.csv"), TextSpec(column="text")))
    build_map(ws, MapParams(EmbedParams(model="test/hash-bow"), ProjectParams(n_neighbors=10, seed=1),
                            ClusterParams(min_cluster_size=8)), encoder=BagOfWordsEncoder())
    return {"ws": ws.root, "data": data, "img": img, "link": link}


@pytest.fixture(scope="module")
def page(browser, hostile, evil_host):
    base, _ = evil_host
    env = {"SIEVE_WORKSPACE": str(hostile["ws"]), "SIEVE_DATA_DIR": str(hostile["data"]), "SIEVE_NO_WARMUP": "1"}
    with running_app(env, "streamlit-markdown.log") as url:
        context = browser.new_context(viewport=VIEWPORT)
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        requested: list[str] = []
        pg.on("request", lambda req: requested.append(req.url) if req.url.startswith(base) else None)
        pg.requested = requested
        pg.goto(url)
        pg.wait_for_selector("[data-testid=stApp]")
        yield pg
        context.close()


def _idle(pg) -> None:
    time.sleep(0.5)
    pg.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                         ".getAttribute('data-test-script-state') === 'notRunning'", timeout=120_000)
    time.sleep(1.0)  # let images (if any were rendered) start loading


def _assert_inert(pg, evil_host, step: str) -> None:
    base, seen = evil_host
    _idle(pg)
    pg.screenshot(path=str(SHOTS / f"markdown-{step}.png"), full_page=True)
    elements = pg.evaluate("""(base) => [...document.querySelectorAll('img, a, source, image, iframe')]
        .map(e => [e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('xlink:href') || '',
                   (e.closest('[data-testid]') || e).getAttribute('data-testid'),
                   ((e.closest('[data-testid]') || e).parentElement || e).innerText.slice(0, 300)])
        .filter(u => u[0].includes(base.replace('http://', '')))""", base)
    assert elements == [], (step, elements)
    assert pg.requested == [], (step, pg.requested)
    assert seen == [], (step, seen)


def _open_selectbox(pg, label: str) -> None:
    """Open a selectbox's list so its options are rendered, then close it."""
    box = pg.locator("[data-testid=stSelectbox]").filter(has_text=label).first
    box.scroll_into_view_if_needed()
    box.get_by_role("button", name="Open").first.click()
    pg.wait_for_selector("[role=listbox] [role=option]", state="attached", timeout=20_000)
    time.sleep(0.8)
    pg.keyboard.press("Escape")


def test_hostile_names_never_fetch_or_link(page, hostile, evil_host):
    pg = page
    # Data page: the loaded dataset is pre-filled (relative to the data folder) and previewed.
    pg.get_by_text("Path or glob").first.wait_for()
    _assert_inert(pg, evil_host, "data-preview")
    _open_selectbox(pg, "Score column")
    _assert_inert(pg, evil_host, "data-score-options")
    pg.get_by_text("Template", exact=True).first.click()
    _idle(pg)
    box = pg.get_by_label("Template (columns in braces", exact=False).first
    box.fill("{nope} " + hostile["link"])
    box.press("Enter")
    _idle(pg)
    pg.get_by_role("button", name="Load dataset").click()
    pg.wait_for_function("() => [...document.querySelectorAll('[data-testid=stAlert]')]"
                         ".some(e => e.innerText.includes('nope'))", timeout=60_000)
    alerts = pg.evaluate("() => [...document.querySelectorAll('[data-testid=stAlert]')].map(e => e.innerText)")
    assert any("nope" in a and hostile["img"] in a.replace("\u200b", "") for a in alerts), alerts  # as typed, as text
    _assert_inert(pg, evil_host, "data-template-error")

    # Map page: a SQL error that quotes the hostile names.
    goto(pg, "Map")
    _idle(pg)
    pg.get_by_role("tab", name="SQL filter").click()
    where = pg.get_by_label("WHERE").first
    where.fill(f'"{hostile["img"]}" > 100 OR "{hostile["link"]}" = 1 OR nope')
    where.press("Enter")
    _idle(pg)
    pg.get_by_role("button", name="Select matching rows").click()
    _idle(pg)
    alerts = pg.evaluate("() => [...document.querySelectorAll('[data-testid=stAlert]')].map(e => e.innerText)")
    assert any("nope" in a for a in alerts), alerts
    _assert_inert(pg, evil_host, "map-sql-error")

    # Budget page: the score and strata pickers list the hostile columns.
    goto(pg, "Budget")
    _idle(pg)
    _open_selectbox(pg, "Strata column")
    _assert_inert(pg, evil_host, "budget-strata-options")
    method = pg.locator("[data-testid=stSelectbox]").filter(has_text="Method").first
    method.scroll_into_view_if_needed()
    method.get_by_role("button", name="Open").first.click()
    pg.locator("[role=listbox] [role=option]").filter(has_text="score").first.click()
    _idle(pg)
    _open_selectbox(pg, "Score column")
    _assert_inert(pg, evil_host, "budget-score-options")
