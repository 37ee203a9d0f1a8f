"""Fixtures for the app tests: a small map built with core and a fake encoder.

Import the fixtures into a test module with ``from tests.app_fixtures import *``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import BagOfWordsEncoder

APP = str(Path(__file__).resolve().parents[1] / "app.py")
N_ROWS = 400
def build_small_map(root: Path, n_rows: int = N_ROWS, seed: int = 7):
    """Ingest generated rows into a workspace at ``root`` and build its map. Returns (ws, MapData)."""
    import pyarrow.parquet as pq

    from core.stages.cluster import ClusterParams
    from core.stages.embed import EmbedParams
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.engines.local import MapParams, build_map, load_map
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace
    from sample_data.generate import generate_rows

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data_path = root.parent / f"{root.name}-rows.parquet"
    pq.write_table(generate_rows(n_rows, seed=seed), data_path)
    ws = Workspace(root)
    ingest(ws, IngestParams(str(data_path), TextSpec(column="text")))
    # auto_rule 1, assign_noise None: the map these tests were written against (before issue 16)
    params = MapParams(EmbedParams(model="test/hash-bow"), ProjectParams(n_neighbors=10, seed=1),
                       ClusterParams(min_cluster_size=8, auto_rule=1, assign_noise=None))
    build_map(ws, params, encoder=BagOfWordsEncoder())
    return ws, load_map(ws)


@pytest.fixture(scope="session")
def small_map(tmp_path_factory):
    """(workspace, MapData) of a ~400-row map, built once per test session."""
    return build_small_map(tmp_path_factory.mktemp("app-map") / "ws")


@pytest.fixture
def map_env(small_map, monkeypatch):
    """SIEVE_WORKSPACE pointing at the small map's workspace."""
    ws, data = small_map
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    return ws, data


@pytest.fixture
def empty_env(tmp_path, monkeypatch):
    """SIEVE_WORKSPACE pointing at an empty workspace."""
    root = tmp_path / "empty-ws"
    monkeypatch.setenv("SIEVE_WORKSPACE", str(root))
    return root


def new_app(timeout: float = 60):
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(APP, default_timeout=timeout)


def open_page(page: str, timeout: float = 60, *, state: dict | None = None):
    """An AppTest with ``state`` seeded into session state, run once on ``page``."""
    at = new_app(timeout)
    for k, v in (state or {}).items():
        at.session_state[k] = v
    at.switch_page(page)
    at.run()
    return at


def metric_value(at, label: str) -> str:
    """The value of the ``st.metric`` labelled ``label``, thousands separators removed."""
    found = [m.value for m in at.metric if m.label == label]
    assert len(found) == 1, f"{len(found)} metrics labelled {label!r} in {[m.label for m in at.metric]}"
    return str(found[0]).replace(",", "")


def no_errors(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def chart(at):
    """The page's one map chart (the Map page also draws small summary charts, keyed otherwise)."""
    charts = [c for c in at.get("plotly_chart") if "summary" not in c.proto.id]
    assert len(charts) == 1
    return charts[0]


def summary_charts(at) -> dict[str, object]:
    """The Map page's small summary charts, by column (their keys end with the column's name)."""
    return {c.proto.id.rsplit("w.summary.chart.", 1)[1].split(".", 1)[1]: c
            for c in at.get("plotly_chart") if "w.summary.chart." in c.proto.id}


def send_chart_selection(at, element, selection: dict):
    """Like send_selection, for any plotly chart element."""
    import json

    states = at._tree.get_widget_states()
    w = states.widgets.add()
    w.id = element.proto.id
    w.string_value = json.dumps({"selection": selection})
    return at._run(states)


def send_selection(at, selection: dict):
    """Send a plotly selection event (private AppTest API: WidgetState with a JSON string)."""
    import json

    states = at._tree.get_widget_states()
    w = states.widgets.add()
    w.id = chart(at).proto.id
    w.string_value = json.dumps({"selection": selection})
    return at._run(states)
