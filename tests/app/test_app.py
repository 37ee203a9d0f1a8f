"""AppTest (no browser) tests of the Streamlit pages, on a small map built with core
and a fake encoder (see tests/app_fixtures.py)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from core.budget_settings import default_budget
from pages import figures
from pages import state as S
from tests.app_fixtures import (  # noqa: F401  (fixtures)
    chart,
    empty_env,
    map_env,
    metric_value,
    new_app,
    no_errors,
    open_page,
    send_selection,
    small_map,
)


def _links(at) -> list[str]:
    return [el.proto.page for el in at.get("page_link")]


# -- prerequisites ------------------------------------------------------------------------


@pytest.mark.parametrize("page_path", [S.PAGE_MAP, S.PAGE_BUDGET, S.PAGE_EXPORT])
def test_missing_dataset_links_to_data(empty_env, page_path):
    at = open_page(page_path)
    no_errors(at)
    assert any("No dataset" in i.value for i in at.info)
    assert any(link == "data" for link in _links(at))


def test_missing_map_links_to_map(map_env, tmp_path, monkeypatch):
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.store.workspace import Workspace

    # A workspace with a dataset but no map.
    root = tmp_path / "no-map"
    ingest(Workspace(root), IngestParams(str(S.SAMPLE_PATH), TextSpec(column="text")))
    monkeypatch.setenv("SIEVE_WORKSPACE", str(root))
    at = open_page(S.PAGE_BUDGET)
    no_errors(at)
    assert any("no map" in i.value for i in at.info)
    assert any(link == "map" for link in _links(at))
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    assert any(b.label == "Compute map" for b in at.button)


def test_export_without_budget_links_to_budget(map_env):
    at = open_page(S.PAGE_EXPORT)
    no_errors(at)
    assert any(link == "budget" for link in _links(at))


# -- data ----------------------------------------------------------------------------------


def test_data_page_autoloads_sample_and_shows_counts(empty_env):
    from core.stages.dataset import current_dataset
    from core.store.workspace import Workspace

    at = new_app().run()
    no_errors(at)
    info = current_dataset(Workspace(empty_env))
    assert info.sources == [str(S.SAMPLE_PATH)]
    assert metric_value(at, "Rows") == str(info.n_rows)
    assert metric_value(at, "Empty texts") == str(info.n_empty)
    assert metric_value(at, "Exact duplicates") == str(info.n_duplicates)
    assert at.radio(key="w.source_kind").value == "Bundled sample"
    assert at.selectbox(key="w.text_column").value == "text"
    # The map page now offers to compute.
    at.switch_page(S.PAGE_MAP).run()
    no_errors(at)
    assert any(b.label == "Compute map" for b in at.button)


def test_data_page_bad_path_is_one_line_error(empty_env):
    at = new_app().run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input("/no/such/file.csv").run()
    assert not at.exception
    assert any("/no/such/file.csv" in e.value and "does not exist" in e.value for e in at.error)
    at.text_input(key="w.source_path").input("/tmp/*.nothing-matches-this").run()
    assert any("no file matches" in e.value for e in at.error)


def test_data_page_path_box_is_confined_to_the_data_dir(empty_env, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("prompt\nhello world\nsecond row\n")
    (tmp_path / "secret.csv").write_text("prompt\nsecret\n")
    monkeypatch.setenv("SIEVE_DATA_DIR", str(data))
    at = new_app().run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(tmp_path / "secret.csv")).run()
    assert not at.exception
    assert any("must be relative to the data folder" in e.value for e in at.error)
    at.text_input(key="w.source_path").input("../secret.csv").run()
    assert any("must not contain '..'" in e.value for e in at.error)
    at.text_input(key="w.source_path").input("rows.csv").run()
    no_errors(at)
    at.selectbox(key="w.text_column").set_value("prompt").run()
    at.button(key="w.load").click().run()
    no_errors(at)
    assert metric_value(at, "Rows") == "2"


def test_data_page_loads_a_path_with_template(empty_env, tmp_path):
    import pyarrow as pa

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"q": ["a b", "c d", "", "a b"], "ctx": ["x", None, "y", "x"],
                             "score": [1.0, 2.0, 3.0, 4.0]}), path)
    at = new_app().run()
    at.radio(key="w.source_kind").set_value("Path or glob").run()
    at.text_input(key="w.source_path").input(str(path)).run()
    no_errors(at)
    at.radio(key="w.text_mode").set_value("Template").run()
    at.text_input(key="w.template").input("{q}\\n{ctx}").run()
    at.selectbox(key="w.score_column").set_value("score").run()
    at.button(key="w.load").click().run()
    no_errors(at)
    assert metric_value(at, "Rows") == "4"
    assert metric_value(at, "Exact duplicates") == "1"
    assert at.session_state[S.C_SCORE_COLUMN] == "score"


def test_data_page_upload_is_saved_under_workspace_with_safe_name(empty_env):
    at = new_app().run()
    at.radio(key="w.source_kind").set_value("Upload").run()
    body = b"prompt,score\nhello world,1\nsecond row,2\n,3\n"
    at.file_uploader(key="w.upload").upload("../../evil name;rm.CSV", body, "text/csv").run()
    no_errors(at)
    uploads = list((empty_env / "uploads").iterdir())
    assert len(uploads) == 1 and uploads[0].read_bytes() == body
    assert uploads[0].name.endswith("-evil_name_rm.csv")
    at.selectbox(key="w.text_column").set_value("prompt").run()
    at.button(key="w.load").click().run()
    no_errors(at)
    assert metric_value(at, "Rows") == "3" and metric_value(at, "Empty texts") == "1"


# -- map -----------------------------------------------------------------------------------


def test_map_page_loads_existing_map(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    n_clusters = len([c for c in data.clusters if c.id >= 0])
    assert metric_value(at, "Clusters") == str(n_clusters)
    assert metric_value(at, "Selected rows") == "0"
    fig = json.loads(chart(at).proto.spec)
    names = [t["name"] for t in fig["data"]]
    assert names[0] == "unclustered" and len(names) == n_clusters + 1
    assert all(t["type"] == "scattergl" for t in fig["data"])


def test_map_box_and_lasso_select_all_rows_and_pin(map_env):
    from core.explore import points_in_box, points_in_lasso

    _, data = map_env
    at = open_page(S.PAGE_MAP)
    x0, x1 = np.percentile(data.xy[:, 0], [10, 60])
    y0, y1 = np.percentile(data.xy[:, 1], [10, 60])
    at = send_selection(at, {"points": [], "point_indices": [], "box": [{"x": [float(x0), float(x1)],
                                                                  "y": [float(y0), float(y1)]}], "lasso": []})
    no_errors(at)
    want = int(points_in_box(data.xy, x0, x1, y0, y1).sum())
    assert want > 0
    assert metric_value(at, "Selected rows") == str(want)

    lx = [float(v) for v in np.percentile(data.xy[:, 0], [5, 95, 50])]
    ly = [float(v) for v in np.percentile(data.xy[:, 1], [5, 5, 95])]
    at = send_selection(at, {"points": [], "point_indices": [], "box": [], "lasso": [{"x": lx, "y": ly}]})
    want = int(points_in_lasso(data.xy, lx, ly).sum())
    assert metric_value(at, "Selected rows") == str(want)

    at.button(key="w.pin").click().run()
    no_errors(at)
    assert metric_value(at, "Pinned rows") == str(want)
    at.button(key="w.clear").click().run()
    assert metric_value(at, "Selected rows") == "0"
    assert metric_value(at, "Pinned rows") == str(want)  # pins survive clearing the selection


def test_map_search_select_matches_and_ban(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP)
    at.text_input(key="w.search").input("PYTHON").run()
    no_errors(at)
    texts_ = at.session_state[S.K_TEXTS]
    want = sum("python" in t.lower() for t in texts_)
    assert want > 0
    assert metric_value(at, "Search matches") == str(want)
    at.button(key="w.select_matches").click().run()
    assert metric_value(at, "Selected rows") == str(want)
    at.button(key="w.ban").click().run()
    assert metric_value(at, "Banned rows") == str(want)
    # The budget never picks a banned row.
    at.switch_page(S.PAGE_BUDGET).run()
    no_errors(at)
    sel = at.session_state[S.K_SELECTION]["selection"]
    assert not set(sel.row_ids.tolist()) & at.session_state[S.K_BANS]


def test_map_cluster_filter_restricts_figure_and_selection(map_env):
    from core.explore import points_in_box

    _, data = map_env
    at = open_page(S.PAGE_MAP)
    at.multiselect(key="w.filter").set_value([0]).run()
    no_errors(at)
    fig = json.loads(chart(at).proto.spec)
    assert len(fig["data"]) == 1
    lo, hi = data.xy.min(axis=0) - 1, data.xy.max(axis=0) + 1
    at = send_selection(at, {"points": [], "box": [{"x": [float(lo[0]), float(hi[0])], "y": [float(lo[1]), float(hi[1])]}],
                      "lasso": []})
    assert metric_value(at, "Selected rows") == str(int((data.labels == 0).sum()))
    assert int(points_in_box(data.xy, lo[0], hi[0], lo[1], hi[1]).sum()) == len(data.labels)


# -- budget --------------------------------------------------------------------------------


def _alloc(at) -> dict[int, int]:
    df = at.table[0].value
    return {int(c): int(b) for c, b in zip(df.index, df["budget"])}


def test_budget_widgets_change_allocation(map_env):
    _, data = map_env
    at = open_page(S.PAGE_BUDGET)
    no_errors(at)
    n = len(data.row_ids)
    start = int(metric_value(at, "Rows in the subset"))
    assert start == default_budget(n)
    assert sum(_alloc(at).values()) == start

    at.slider(key=S.W_BUDGET_SLIDER).set_value(120).run()
    assert metric_value(at, "Rows in the subset") == str(start)  # in a form: nothing changes before Apply
    at.slider(key=S.W_BUDGET_SLIDER).set_value(120)
    at.button(key=S.W_BUDGET_APPLY).click().run()
    no_errors(at)
    assert metric_value(at, "Rows in the subset") == "120"
    assert at.number_input(key=S.W_BUDGET_NUMBER).value == 120  # kept in sync
    equal = _alloc(at)
    assert sum(equal.values()) == 120

    at.number_input(key=S.W_BUDGET_NUMBER).set_value(90)
    at.button(key=S.W_BUDGET_APPLY).click().run()
    assert metric_value(at, "Rows in the subset") == "90"
    assert at.slider(key=S.W_BUDGET_SLIDER).value == 90

    at.selectbox(key="w.policy").set_value("proportional").run()
    prop = _alloc(at)
    assert sum(prop.values()) == 90 and prop != equal
    # the groups the policy weighs: the selection's labels (soft noise 0, the default, moves the
    # map's unclustered rows into their most likely clusters)
    eff = at.session_state[S.K_SELECTION]["selection"].labels
    sizes = {int(c): int((eff == c).sum()) for c in np.unique(eff)}
    big, small = max(sizes, key=sizes.get), min(sizes, key=sizes.get)
    assert prop[big] >= prop[small]

    at.selectbox(key="w.noise").set_value("exclude").run()
    assert _alloc(at)[-1] == 0 and metric_value(at, "Rows in the subset") == "90"


def test_budget_same_settings_same_rows_and_seed_changes_them(map_env):
    # the random pick (the default facility pick on clusters this small uses every candidate: no seed in play)
    at = open_page(S.PAGE_BUDGET, state={S.C_PICK: "random"})
    first = at.session_state[S.K_SELECTION]["selection"].row_ids.copy()
    at.run()
    assert np.array_equal(at.session_state[S.K_SELECTION]["selection"].row_ids, first)
    at.number_input(key="w.seed").set_value(5).run()
    second = at.session_state[S.K_SELECTION]["selection"].row_ids
    assert not np.array_equal(np.sort(second), np.sort(first))
    at.number_input(key="w.seed").set_value(0).run()
    assert np.array_equal(at.session_state[S.K_SELECTION]["selection"].row_ids, first)


def test_budget_sliders_per_cluster(map_env):
    _, data = map_env
    at = open_page(S.PAGE_BUDGET)
    at.radio(key="w.mode").set_value("Sliders").run()
    no_errors(at)
    sliders = [s for s in at.slider if s.key and s.key.startswith(S.W_SLIDER_PREFIX)]
    n_groups = len(np.unique(data.labels))
    assert len(sliders) == n_groups  # one per cluster + unclustered (noise included)
    before = sum(s.value for s in sliders)
    assert metric_value(at, "Rows in the subset") == str(before)
    assert at.slider(key=S.W_BUDGET_SLIDER).value == before and at.number_input(key=S.W_BUDGET_NUMBER).value == before
    target = sliders[0]
    target.set_value(target.value + 3)
    at.button(key=S.W_SLIDERS_APPLY).click().run()
    no_errors(at)
    after = sum(s.value for s in at.slider if s.key and s.key.startswith(S.W_SLIDER_PREFIX))
    assert after == before + 3
    assert metric_value(at, "Rows in the subset") == str(after)
    # The Total slider and the Rows box follow the sliders' sum (issue 14 A3).
    assert at.slider(key=S.W_BUDGET_SLIDER).value == after
    assert at.number_input(key=S.W_BUDGET_NUMBER).value == after
    cid = int(target.key.rsplit(".", 1)[1])
    assert _alloc(at)[cid] == target.value


def test_budget_table_overrides_and_bounds(map_env):
    _, data = map_env
    at = open_page(S.PAGE_BUDGET, state={S.C_PER_CLUSTER_MODE: "Table", S.C_BUDGET: 80,
                                         S.C_TABLE: {0: (None, None, 25), 1: (None, 2, None)}})
    no_errors(at)
    alloc = _alloc(at)
    assert alloc[0] == 25 and alloc[1] <= 2 and sum(alloc.values()) == 80


def test_budget_pins_are_honoured(map_env):
    _, data = map_env
    pins = {int(x) for x in data.row_ids[:5]}
    at = open_page(S.PAGE_BUDGET, state={S.K_PINS: set(pins), S.K_PINBAN_DATASET: data.dataset.key,
                                         S.C_BUDGET: 30})
    no_errors(at)
    sel = at.session_state[S.K_SELECTION]["selection"]
    assert pins <= set(sel.row_ids.tolist())
    assert metric_value(at, "Rows in the subset") == "30"


def test_budget_bad_settings_show_error_not_traceback(map_env):
    at = open_page(S.PAGE_BUDGET, state={S.C_PER_CLUSTER_MODE: "Table", S.C_BUDGET: 5,
                                         S.C_TABLE: {0: (None, None, 20)}})
    assert not at.exception
    assert any("budget=5" in e.value for e in at.error)


# -- export --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_saves_file_and_manifest(map_env, tmp_path, monkeypatch, fmt):
    from core.manifest import read_manifest

    _, data = map_env
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(tmp_path))
    at = open_page(S.PAGE_BUDGET)
    at.number_input(key=S.W_BUDGET_NUMBER).set_value(77)
    at.button(key=S.W_BUDGET_APPLY).click().run()
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert next(m.value for m in at.metric if m.label == "Rows to export") == "77"
    at.radio(key="w.format").set_value(fmt).run()
    assert at.text_input(key="w.save_path").value == f"sieve-subset-77.{fmt}"  # follows budget and format
    out = tmp_path / "sub" / f"subset.{fmt}"
    at.text_input(key="w.save_path").input(f"sub/subset.{fmt}").run()
    at.button(key="w.save").click().run()
    no_errors(at)
    assert metric_value(at, "Rows saved") == "77"
    if fmt == "parquet":
        ids = pq.read_table(out).column("sieve_row_id").to_pylist()
    else:
        import csv

        with open(out, newline="") as fh:
            ids = [int(r["sieve_row_id"]) for r in csv.DictReader(fh)]
    assert len(ids) == 77
    man = read_manifest(str(out) + ".manifest.json")
    assert sorted(ids) == man["selected_row_ids"] and man["n_selected"] == 77
    assert any("sieve reproduce" in c.value for c in at.code)
    assert at.json  # the manifest is shown


@pytest.mark.parametrize("name,message", [("subset.xlsx", "xlsx"), ("../escape.parquet", ".."),
                                          ("/etc/evil.parquet", "absolute")])
def test_export_path_is_confined_to_export_folder(map_env, tmp_path, monkeypatch, name, message):
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(tmp_path / "exports"))
    at = open_page(S.PAGE_BUDGET)
    at.switch_page(S.PAGE_EXPORT).run()
    at.text_input(key="w.save_path").input(name).run()
    at.button(key="w.save").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert not (tmp_path / "escape.parquet").exists() and not list(tmp_path.glob("**/*.xlsx"))


def test_export_download_builds_bytes_on_demand(map_env):
    """The download button's data is a callable; the same builder gives the file's bytes."""
    import io

    from core.explore_files import export_bytes

    ws, data = map_env
    at = open_page(S.PAGE_BUDGET)
    sel = at.session_state[S.K_SELECTION]["selection"]
    raw = export_bytes(ws, sel, data.cluster_names, "parquet")
    tbl = pq.read_table(io.BytesIO(raw))
    assert tbl.num_rows == len(sel)
    assert sorted(tbl.column("sieve_row_id").to_pylist()) == sorted(sel.row_ids.tolist())
    raw_jsonl = export_bytes(ws, sel, data.cluster_names, "jsonl")
    assert len(raw_jsonl.decode().strip().splitlines()) == len(sel)
    at.switch_page(S.PAGE_EXPORT).run()
    labels = [b.label for b in at.get("download_button")]
    assert any(lbl.endswith(".parquet") for lbl in labels) and any("manifest" in lbl for lbl in labels)


def test_export_offers_the_map_file_for_a_parallel_map(tmp_path, monkeypatch):
    """A parallel-UMAP map cannot be recomputed bit for bit: the page offers its map file
    beside the manifest, and the downloaded manifest names it."""
    import core.stages.project as P
    from tests.app_fixtures import build_small_map

    monkeypatch.setattr(P, "PARALLEL_MIN_ROWS", 0)
    ws, data = build_small_map(tmp_path / "ws", n_rows=300, seed=3)
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    at = open_page(S.PAGE_BUDGET)
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    labels = [b.label for b in at.get("download_button")]
    assert any(lbl.endswith(".manifest.map.npz") for lbl in labels), labels
    assert any("parallel UMAP" in c.value for c in at.caption)


def test_map_highlight_adds_trace_and_hover_is_escaped(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP)
    at.text_input(key="w.search").input("python").run()
    before = json.loads(chart(at).proto.spec)
    at.checkbox(key="w.highlight").check().run()
    no_errors(at)
    after = json.loads(chart(at).proto.spec)
    assert len(after["data"]) == len(before["data"]) + 1 and after["data"][-1]["name"] == "search matches"
    # The figure is cached: an unrelated rerun sends the identical figure (so a selection survives).
    at.run()
    assert json.loads(chart(at).proto.spec) == after

    texts_ = ["<b>bold</b> & <script>alert(1)</script>"] * len(data.row_ids)
    fig, traces = figures.map_figure(data, texts_, np.arange(len(data.row_ids)))
    hover = fig.data[0].text[0]
    assert "<b>" not in hover and "&lt;b&gt;bold&lt;/b&gt;" in hover and "&lt;script&gt;" in hover
    assert sum(len(t) for t in traces) == len(data.row_ids)


def test_map_sql_filter_selects_rows_and_refuses_files(map_env):
    _, data = map_env
    at = open_page(S.PAGE_MAP)
    at.text_input(key="w.sql_where").input("source = 'forum'").run()
    at.button(key="w.sql_select").click().run()
    no_errors(at)
    from core.store.query import run_filter

    want = int(np.isin(data.row_ids, run_filter(map_env[0], "source = 'forum'")).sum())
    assert want > 0 and metric_value(at, "Selected rows") == str(want)
    at.text_input(key="w.sql_where").input("1=1) OR (SELECT count(*) FROM read_csv('/etc/passwd')) > 0 OR (1").run()
    at.button(key="w.sql_select").click().run()
    assert not at.exception
    assert at.error and metric_value(at, "Selected rows") == str(want)


# -- curate clusters -------------------------------------------------------------------------


def test_map_curate_rename_merge_split_undo(small_map, tmp_path, monkeypatch):
    """The Curate tab's controls edit the session's map (in a copy of the small map's
    workspace: the edits are stored there)."""
    import shutil

    from core.engines.local import load_map
    from core.store.workspace import Workspace
    from pages import map_tools as T

    root = tmp_path / "ws"
    shutil.copytree(small_map[0].root, root)
    ws = Workspace(root)
    data = load_map(ws)
    monkeypatch.setenv("SIEVE_WORKSPACE", str(root))
    ids = sorted(c.id for c in data.clusters if c.id >= 0)
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    assert metric_value(at, "Cluster edits") == "0"
    at.selectbox(key=T.W_CUR_RENAME_ID).set_value(ids[0])
    at.text_input(key=T.W_CUR_RENAME_NAME).input("*refunds* <b>")
    at.button(key=T.W_CUR_RENAME).click().run()
    no_errors(at)
    assert metric_value(at, "Cluster edits") == "1"
    assert at.session_state[S.K_MAP].cluster_names[ids[0]] == "*refunds* <b>"
    fig = json.loads(chart(at).proto.spec)
    assert "*refunds* &lt;b&gt;" in [t["name"] for t in fig["data"]]  # the legend shows it escaped

    big = max((c for c in data.clusters if c.id >= 0), key=lambda c: c.size).id
    at.selectbox(key=T.W_CUR_SPLIT_ID).set_value(big)
    at.number_input(key=T.W_CUR_SPLIT_K).set_value(3)
    at.button(key=T.W_CUR_SPLIT).click().run()
    no_errors(at)
    after_split = at.session_state[S.K_MAP]
    assert len([c for c in after_split.clusters if c.id >= 0]) == len(ids) + 2
    assert metric_value(at, "Clusters") == str(len(ids) + 2)
    new_ids = sorted(set(after_split.cluster_names) - set(data.cluster_names))
    at.multiselect(key=T.W_CUR_MERGE_IDS).set_value([big] + new_ids)
    at.button(key=T.W_CUR_MERGE).click().run()
    no_errors(at)
    merged = at.session_state[S.K_MAP]
    assert np.array_equal(merged.labels == big, data.labels == big)  # the parts merged back
    assert metric_value(at, "Cluster edits") == "3"
    # the workspace keeps the edits: a fresh session opens the curated map
    assert load_map(Workspace(ws.root)).edits == merged.edits
    # a bad edit is one error line, and nothing changes
    at.text_input(key=T.W_CUR_RENAME_NAME).input("   ")
    at.button(key=T.W_CUR_RENAME).click().run()
    assert not at.exception and any("edit 4 (rename)" in e.value.replace("\\", "") for e in at.error)  # escaped markdown
    assert metric_value(at, "Cluster edits") == "3"
    at.button(key=T.W_CUR_UNDO).click().run()
    no_errors(at)
    assert metric_value(at, "Cluster edits") == "2"
    at.button(key=T.W_CUR_CLEAR).click().run()
    no_errors(at)
    assert metric_value(at, "Cluster edits") == "0"
    assert np.array_equal(at.session_state[S.K_MAP].labels, data.labels)


# -- colour by any column, linked summaries ----------------------------------------------------


def test_map_colour_by_column_and_linked_summary_bars_filter(map_env):
    from core.summaries import TEXT_LENGTH, column_view
    from pages import map_tools as T
    from tests.app_fixtures import send_chart_selection, summary_charts

    ws, data = map_env
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    n_traces = len(json.loads(chart(at).proto.spec)["data"])
    # colour by a categorical column: the cluster traces stay (selection works the same), the legend shows values
    at.selectbox(key=T.W_COLOR_BY).set_value("source").run()
    no_errors(at)
    fig = json.loads(chart(at).proto.spec)
    view = column_view(ws, "source", data.row_ids)
    legend = [t["name"] for t in fig["data"][n_traces:]]
    assert legend == view.categories and len(fig["data"]) == n_traces + len(view.categories)
    assert not any(t.get("showlegend", True) for t in fig["data"][:n_traces])
    # a numeric column: a colour scale
    at.selectbox(key=T.W_COLOR_BY).set_value("quality").run()
    no_errors(at)
    fig = json.loads(chart(at).proto.spec)
    assert fig["data"][-1]["marker"]["showscale"] is True and fig["data"][0]["marker"]["colorscale"]
    # the summaries: the text length by default; add "source"
    at.multiselect(key=T.W_SUMMARY_COLS).set_value([TEXT_LENGTH, "source"]).run()
    charts = summary_charts(at)
    assert set(charts) == {TEXT_LENGTH, "source"}
    bars = json.loads(charts["source"].proto.spec)["data"]
    assert list(bars[0]["y"]) == view.categories  # one bar per value; grey = all rows
    assert abs(sum(bars[0]["x"]) - 1) < 1e-6
    # a click on the "forum" bar selects the rows with source = forum
    b = view.categories.index("forum")
    at = send_chart_selection(at, charts["source"], {"points": [{"customdata": b, "curve_number": 0,
                                                                  "point_index": b}], "box": [], "lasso": []})
    no_errors(at)
    forum = int((np.asarray(view.codes) == b).sum())
    assert forum > 0 and metric_value(at, "Selected rows") == str(forum)
    # the selection's share is now all "forum"
    bars = json.loads(summary_charts(at)["source"].proto.spec)["data"]
    assert bars[1]["x"][b] == 1.0
    # a click on a text-length bin keeps only the selected rows in that bin
    from core.summaries import bar_mask, text_length_view

    tl = text_length_view(at.session_state[S.K_TEXTS])

    at = send_chart_selection(at, summary_charts(at)[TEXT_LENGTH],
                              {"points": [{"customdata": 0, "curve_number": 1, "point_index": 0}], "box": [],
                               "lasso": []})
    no_errors(at)
    want = int((bar_mask(tl, 0) & (np.asarray(view.codes) == b)).sum())
    assert metric_value(at, "Selected rows") == str(want)


def test_map_more_like_this_follows_a_clicked_point(map_env):
    """A clicked point fills the Row id box; More like this (the row's own vector: no model
    needed) lists that row first, at similarity 1."""
    from pages import map_tools as T

    _, data = map_env
    at = open_page(S.PAGE_MAP)
    p = 17
    at = send_selection(at, {"points": [{"customdata": p, "curve_number": 0, "point_index": 0}], "box": [],
                             "lasso": []})
    no_errors(at)
    assert metric_value(at, "Selected rows") == "1"
    assert at.number_input(key=T.W_SEM_ROW).value == int(data.row_ids[p])
    at.button(key=T.W_SEM_LIKE).click().run()
    no_errors(at)
    res = at.session_state[T.K_SEM]
    assert int(res["ids"][0]) == int(data.row_ids[p]) and abs(float(res["sims"][0]) - 1) < 1e-5
    assert metric_value(at, "Rows found") == str(min(20, len(data.row_ids)))
