"""The Map, Budget and Export pages on the Ray engine (pages/map_sharded.py, budget_sharded.py,
export_sharded.py) and the in-process shard path (core.engines.ray, local=True).

The sharded map is built without Ray (``local=True`` runs the same shard workers in this
process) from the app tests' generated rows and bag-of-words encoder, fitted on a sample
smaller than the data so that the assignment path runs.  The Map page must draw a sample,
apply a box or lasso to *every* row (not only the drawn ones), keep pins and bans through
a new selection; the Budget page must allocate and pick on the shards; the Export page must
write shards + a manifest that reproduces the same rows.  The engine is chosen once per
dataset on the Map page (a workspace with only a sharded map starts on Ray).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pages import state as S
from tests.fakes import BagOfWordsEncoder
from tests.app_fixtures import (chart, empty_env, map_env, metric_value, new_app, no_errors, open_page,  # noqa: F401
                                 send_selection, small_map)

N_ROWS = 1200
SAMPLE = 700


def _build(root: Path, n_rows: int = N_ROWS, sample: int = SAMPLE, shard_rows: int = 300):
    from core.engines import ray as scale
    from core.stages.cluster import ClusterParams
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.stages.project import ProjectParams
    from core.store.workspace import Workspace
    from sample_data.generate import generate_rows

    root.mkdir(parents=True, exist_ok=True)
    data_path = root.parent / f"{root.name}-rows.parquet"
    pq.write_table(generate_rows(n_rows, seed=11), data_path)
    ws = Workspace(root)
    ingest(ws, IngestParams(str(data_path), TextSpec(column="text")))
    emb = scale.embed_shards(ws, scale.ScaleEmbedParams(model="test/hash-bow", shard_rows=shard_rows),
                             encoder_factory=BagOfWordsEncoder, local=True)
    res = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(sample, 3, ProjectParams(n_neighbors=10, seed=1),
                                                               ClusterParams(min_cluster_size=10)), local=True)
    return ws, emb, res


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("scale-app") / "ws")


@pytest.fixture
def scale_env(sharded, monkeypatch):
    ws, emb, res = sharded
    monkeypatch.setenv("SIEVE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SIEVE_EXPORT_DIR", str(ws.root.parent / "exports"))
    return sharded


def _budget(at, total: int):
    """Set the Budget page's total (its form: the Rows box, then Apply)."""
    at.number_input(key=S.W_BUDGET_NUMBER).set_value(total)
    return at.button(key=S.W_BUDGET_APPLY).click().run()


def _engine_radio(at):
    found = [r for r in at.radio if r.label == "Engine"]
    assert len(found) == 1, [r.label for r in at.radio]
    return found[0]


def _map(res):
    from core.engines import ray as scale

    tbl = scale.load_scaled_map(res.folder)
    return (tbl.column("sieve_row_id").to_numpy(), np.column_stack([tbl.column("x").to_numpy(),
                                                                      tbl.column("y").to_numpy()]),
            tbl.column("cluster").to_numpy())


# -- core: the in-process shard path ------------------------------------------------------------


def test_local_shards_cover_every_row_once_with_named_clusters(sharded):
    from core.engines import ray as scale

    ws, emb, res = sharded
    ids, xy, labels = _map(res)
    from core.stages.dataset import current_dataset

    info_ = current_dataset(ws)
    assert len(ids) == len(np.unique(ids)) == res.n_rows == info_.n_rows - info_.n_empty  # empty texts: off the map
    assert res.n_sample == SAMPLE and res.n_computed == len(list(Path(res.folder).glob("map-*.parquet")))
    info = scale.scaled_map_info(res.folder)
    named = {c["id"]: c for c in info["clusters"]}
    # every cluster on the map has a name and its size counts every row, not just the sample
    assert set(named) == set(np.unique(labels).tolist())
    for c, n in zip(*np.unique(labels, return_counts=True)):
        assert named[int(c)]["size"] == int(n)
        assert named[int(c)]["name"]
    assert sum(c["sample_size"] for c in info["clusters"]) == SAMPLE
    assert any(c["keywords"] for c in info["clusters"] if c["id"] >= 0)
    # the generator's topics are recovered, on the assigned rows as well as the sampled ones
    from sklearn.metrics import homogeneity_score

    from core.explore_files import fetch_rows

    topic = np.asarray(fetch_rows(ws, ids, columns=["topic"]).column("topic").to_pylist())
    sampled = np.isin(ids, scale.sample_row_ids(ids, SAMPLE, 3))
    score = {}
    for name, part in (("sampled", sampled), ("assigned", ~sampled)):
        ok = part & (labels >= 0)
        assert ok.sum() > 0.4 * part.sum()
        score[name] = homogeneity_score(topic[ok], labels[ok])
    print(score)
    assert score["sampled"] > 0.5 and score["assigned"] > score["sampled"] - 0.1


def test_rerun_of_the_local_path_skips_every_shard_and_keeps_the_map(sharded, tmp_path):
    from core.engines import ray as scale
    from core.stages.cluster import ClusterParams
    from core.stages.project import ProjectParams

    ws, emb, res = sharded
    again = scale.embed_shards(ws, scale.ScaleEmbedParams(model="test/hash-bow", shard_rows=300),
                               encoder_factory=BagOfWordsEncoder, local=True)
    assert again.n_computed == 0 and again.n_skipped == emb.n_shards
    res2 = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(SAMPLE, 3, ProjectParams(n_neighbors=10, seed=1),
                                                                ClusterParams(min_cluster_size=10)), local=True)
    assert res2.n_computed == 0 and res2.folder == res.folder


def test_vector_picks_read_only_the_shards_holding_the_cluster(sharded, monkeypatch):
    """A per-cluster pick names only the vector shards where the cluster has rows."""
    from core.engines import ray as scale
    from core.selection import SelectParams

    ws, emb, res = sharded
    ids, _, labels = _map(res)
    seen = []
    import core.engines.ray.select as W  # pick_cluster reads through its module's fetch_arrow

    orig = W.fetch_arrow

    def spy(con, sql, *a, **k):
        seen.append(sql)
        return orig(con, sql, *a, **k)

    monkeypatch.setattr(W, "fetch_arrow", spy)
    # a cluster confined to few shards: the smallest one
    c = min((int(c) for c in np.unique(labels) if c >= 0), key=lambda c: int((labels == c).sum()))
    shard_of = {Path(p).name: p for p in Path(emb.folder).glob("vec-*.parquet")}
    part = scale.pick_cluster(str(res.folder), str(emb.folder), c, 3, SelectParams(budget=3, pick="centroid")
                               .to_dict(), True)
    assert len(part["row_ids"]) == 3 and set(part["row_ids"].tolist()) <= set(ids[labels == c].tolist())
    sql = [s for s in seen if "vector" in s][-1]
    starts = sorted({int(i) // 300 * 300 for i in ids[labels == c]})
    named = [n for n in shard_of if n in sql]
    assert len(named) == len(starts) and len(named) <= len(shard_of)


# -- the page ----------------------------------------------------------------------------------


def _n_drawn(fig: dict) -> int:
    """Points in a figure spec (plotly sends numpy arrays as {"dtype", "bdata"})."""
    import base64

    n = 0
    for t in fig["data"]:
        x = t["x"]
        if isinstance(x, dict):
            n += len(base64.b64decode(x["bdata"])) // np.dtype(x["dtype"]).itemsize
        else:
            n += len(x)
    return n


def test_page_draws_a_sample_and_a_lasso_selects_every_row_inside_it(scale_env):
    from core.explore import points_in_box, points_in_lasso

    ws, emb, res = scale_env
    ids, xy, labels = _map(res)
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    assert _engine_radio(at).value == "ray"  # only a sharded map: the Map page starts on Ray
    fig = json.loads(chart(at).proto.spec)
    drawn = _n_drawn(fig)
    assert drawn == res.n_rows  # under the drawing cap: every row
    names = {c["name"] for c in json.loads((Path(res.folder) / "_meta.json").read_text())["clusters"]}
    assert {t["name"] for t in fig["data"]} <= {n.replace("&", "&amp;") for n in names} | names
    x0, x1 = np.percentile(xy[:, 0], [20, 70])
    y0, y1 = np.percentile(xy[:, 1], [20, 70])
    at = send_selection(at, {"points": [], "box": [{"x": [float(x0), float(x1)], "y": [float(y0), float(y1)]}], "lasso": []})
    no_errors(at)
    want = int(points_in_box(xy, x0, x1, y0, y1).sum())
    assert want > 0 and metric_value(at, "Selected rows (all shards)") == str(want)
    lx = [float(v) for v in np.percentile(xy[:, 0], [5, 95, 50])]
    ly = [float(v) for v in np.percentile(xy[:, 1], [5, 5, 95])]
    at = send_selection(at, {"points": [], "box": [], "lasso": [{"x": lx, "y": ly}]})
    inside = ids[points_in_lasso(xy, lx, ly)]
    assert metric_value(at, "Selected rows (all shards)") == str(len(inside))
    assert set(at.session_state[S.K_SCALE_SELECTED].tolist()) == set(inside.tolist())


def test_page_box_applies_to_rows_that_are_not_drawn(scale_env):
    """With a drawing cap below the row count, a box still selects every row inside it."""
    ws, emb, res = scale_env
    ids, xy, _ = _map(res)
    at = open_page(S.PAGE_MAP, state={S.C_SCALE_DRAWN: 300})
    fig = json.loads(chart(at).proto.spec)
    assert _n_drawn(fig) <= 300 + 200  # the cap (plus per-cluster floors)
    lo, hi = xy.min(axis=0) - 1, xy.max(axis=0) + 1
    at = send_selection(at, {"points": [], "box": [{"x": [float(lo[0]), float(hi[0])], "y": [float(lo[1]), float(hi[1])]}],
                      "lasso": []})
    no_errors(at)
    assert metric_value(at, "Selected rows (all shards)") == str(res.n_rows)


def test_page_pins_and_bans_survive_a_new_selection_and_reach_the_picks(scale_env):
    ws, emb, res = scale_env
    ids, xy, labels = _map(res)
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    # ban the left part of the map, pin a few rows at the right
    xcut = float(np.percentile(xy[:, 0], 30))
    lo, hi = xy.min(axis=0) - 1, xy.max(axis=0) + 1
    at = send_selection(at, {"points": [], "box": [{"x": [float(lo[0]), xcut], "y": [float(lo[1]), float(hi[1])]}],
                      "lasso": []})
    banned = set(ids[xy[:, 0] <= xcut].tolist())
    at.button(key=S.W_SCALE_BAN).click().run()
    no_errors(at)
    assert metric_value(at, "Banned rows") == str(len(banned))
    xpin = float(np.sort(xy[:, 0])[-6])
    at = send_selection(at, {"points": [], "box": [{"x": [xpin, float(hi[0])], "y": [float(lo[1]), float(hi[1])]}],
                      "lasso": []})
    pinned = set(ids[xy[:, 0] >= xpin].tolist())
    at.button(key=S.W_SCALE_PIN).click().run()
    at.button(key=S.W_SCALE_CLEAR).click().run()
    no_errors(at)
    assert metric_value(at, "Selected rows (all shards)") == "0"
    assert metric_value(at, "Pinned rows") == str(len(pinned))
    assert metric_value(at, "Banned rows") == str(len(banned))
    at.switch_page(S.PAGE_BUDGET).run()
    _budget(at, 120)
    at.selectbox(key=S.W_PICK).set_value("diverse").run()
    no_errors(at)
    sel = at.session_state[S.K_SCALE_SELECTION]["selection"]
    chosen = set(sel.row_ids.tolist())
    assert len(chosen) == len(sel) == 120 == int(metric_value(at, "Rows in the subset"))
    assert pinned <= chosen and not chosen & banned
    # a new seed resamples; pins and bans still hold
    at.number_input(key=S.W_SEED).set_value(5).run()
    sel2 = at.session_state[S.K_SCALE_SELECTION]["selection"]
    assert pinned <= set(sel2.row_ids.tolist()) and not set(sel2.row_ids.tolist()) & banned
    C_pins = at.session_state[S.K_PINS]
    assert C_pins == pinned


@pytest.mark.parametrize("pick", ["boundary", "mmr"])
def test_page_vector_picks_equal_core(scale_env, pick):
    from core.engines import ray as scale
    from core.selection import SelectParams

    ws, emb, res = scale_env
    at = open_page(S.PAGE_BUDGET, state={S.K_PINS: set(), S.K_BANS: set()})
    _budget(at, 60)
    at.selectbox(key=S.W_PICK).set_value(pick).run()
    no_errors(at)
    sel = at.session_state[S.K_SCALE_SELECTION]["selection"]
    want = scale.scale_select(res.folder, emb.folder, SelectParams(budget=60, pick=pick), local=True)
    assert len(sel) == 60 and sel.row_ids.tolist() == want.row_ids.tolist()


def test_page_selection_equals_core_and_export_reproduces(scale_env, tmp_path):
    from core.engines import ray as scale
    from core.manifest import read_manifest
    from core.selection import SelectParams

    ws, emb, res = scale_env
    at = open_page(S.PAGE_BUDGET, state={S.K_PINS: set(), S.K_BANS: set()})
    _budget(at, 90)
    at.selectbox(key=S.W_POLICY).set_value("sqrt").run()
    at.number_input(key=S.W_MIN).set_value(2).run()
    no_errors(at)
    sel = at.session_state[S.K_SCALE_SELECTION]["selection"]
    want = scale.scale_select(res.folder, emb.folder, SelectParams(budget=90, policy="sqrt", min_per_cluster=2),
                              local=True)
    assert sel.row_ids.tolist() == want.row_ids.tolist()
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert metric_value(at, "Rows to export") == "90"
    at.text_input(key=S.W_SCALE_FOLDER).input("picked").run()
    at.button(key=S.W_SCALE_EXPORT).click().run()
    no_errors(at)
    out = ws.root.parent / "exports" / "picked"
    parts = sorted(out.glob("part-*.parquet"))
    assert parts
    tbl = pq.read_table(parts[0])
    assert sorted(tbl.column("sieve_row_id").to_pylist()) == sorted(want.row_ids.tolist())
    assert {"sieve_cluster_id", "sieve_rank", "text"} <= set(tbl.column_names)
    man = read_manifest(Path(str(out) + ".manifest.json"))
    assert man["engine"] == "ray" and man["n_selected"] == 90
    # the manifest rebuilds the same rows from the same shards
    again = scale.scale_select(man["scale"]["map_folder"], man["scale"]["embed_folder"],
                               SelectParams.from_dict(man["select"]), local=True)
    assert sorted(again.row_ids.tolist()) == man["selected_row_ids"]
    # a second export to the same folder is refused with a message, nothing overwritten
    before = Path(str(out) + ".manifest.json").read_bytes()
    at.button(key=S.W_SCALE_EXPORT).click().run()
    assert any("already exists" in e.value or "not empty" in e.value for e in at.error)
    assert Path(str(out) + ".manifest.json").read_bytes() == before


def test_page_without_a_sharded_map_explains_and_builds_one_here(tmp_path, monkeypatch):
    """A dataset without shards: the page gives the CLI commands and a build button that
    shards the dataset in this process (the encoder is the fake one here)."""
    import core.engines.ray.embed as E  # the shard workers load their model through it
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec
    from core.store.workspace import Workspace
    from sample_data.generate import generate_rows

    root = tmp_path / "ws"
    data_path = tmp_path / "rows.parquet"
    pq.write_table(generate_rows(400, seed=5), data_path)
    ingest(Workspace(root), IngestParams(str(data_path), TextSpec(column="text")))
    monkeypatch.setenv("SIEVE_WORKSPACE", str(root))
    monkeypatch.setattr(E, "load_encoder", lambda *a, **k: BagOfWordsEncoder())
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    assert _engine_radio(at).value == "local"  # no map of either kind: the Map page starts in memory
    _engine_radio(at).set_value("ray").run()
    no_errors(at)
    assert any("no sharded map" in i.value for i in at.info)
    assert any("--engine ray" in c.value for c in at.code)
    at.number_input(key=S.W_SCALE_SAMPLE).set_value(250).run()
    at.number_input(key=S.W_SCALE_SHARD_ROWS).set_value(150).run()
    at.button(key=S.W_SCALE_BUILD).click().run()
    no_errors(at)
    fig = json.loads(chart(at).proto.spec)
    assert _n_drawn(fig) == meta_rows(root)
    from core.engines import ray as scale

    map_dir, _ = scale.map_folder(Workspace(root))
    meta = scale.scaled_map_info(map_dir)
    assert meta["n_rows"] == meta_rows(root) and meta["n_sample"] == 250 and len(meta["shards"]) == 3


def meta_rows(root: Path) -> int:
    from core.stages.dataset import current_dataset
    from core.store.workspace import Workspace

    info = current_dataset(Workspace(root))
    return info.n_rows - info.n_empty


def test_page_reports_a_budget_below_the_pins_and_keeps_rendering(scale_env):
    ws, emb, res = scale_env
    ids, _, _ = _map(res)
    pins = set(int(i) for i in ids[:30])
    at = open_page(S.PAGE_BUDGET, state={S.K_PINS: pins, S.K_PINBAN_DATASET: None})
    at = _budget(at, 10)
    assert not at.exception
    assert len(at.error) == 1 and "pin" in at.error[0].value.lower(), [e.value for e in at.error]
    assert at.number_input(key=S.W_BUDGET_NUMBER).value == 10  # the budget form still renders
    at.switch_page(S.PAGE_MAP).run()
    assert len(at.dataframe) >= 1  # the cluster table still renders
    at.switch_page(S.PAGE_BUDGET).run()
    at = _budget(at, 40)
    no_errors(at)
    assert pins <= set(at.session_state[S.K_SCALE_SELECTION]["selection"].row_ids.tolist())


def test_event_row_ids_handles_clicks_boxes_and_empty_events(sharded):
    from core.engines import ray as scale
    from core.explore import points_in_box

    ws, emb, res = sharded
    ids, xy, _ = _map(res)
    assert scale.event_row_ids(res.folder, None)[1] == "none"
    assert scale.event_row_ids(res.folder, {"selection": {"points": [], "box": [], "lasso": []}})[0].size == 0
    got, how = scale.event_row_ids(res.folder, {"selection": {"points": [{"customdata": int(ids[7])},
                                                                         {"customdata": [int(ids[3])]}]}})
    assert how == "points" and got.tolist() == sorted([int(ids[3]), int(ids[7])])
    x0, x1 = np.percentile(xy[:, 0], [10, 40]) + 1e-5  # edges off the points (edge rules differ)
    y0, y1 = np.percentile(xy[:, 1], [10, 90]) + 1e-5
    got, how = scale.event_row_ids(res.folder, {"selection": {"box": [{"x": [x1, x0], "y": [y0, y1]}]}})
    assert how == "box" and got.tolist() == sorted(ids[points_in_box(xy, x0, x1, y0, y1)].tolist())


def test_page_export_stays_inside_the_export_folder(scale_env, tmp_path):
    """Issue 15 item 6: folder "." replaced the export folder itself and wrote the manifest
    into its parent; a link planted at <folder>.manifest.json was written through."""
    ws, emb, res = scale_env
    root = ws.root.parent / "exports"
    root.mkdir(exist_ok=True)
    (root / "keep.txt").write_text("kept")
    (root / "lnk.manifest.json").symlink_to(tmp_path / "planted.json")
    at = open_page(S.PAGE_BUDGET, state={S.K_PINS: set(), S.K_BANS: set()})
    _budget(at, 40)
    at.switch_page(S.PAGE_EXPORT).run()
    for name, message in ((".", "itself"), ("./", "itself"), ("sub/..", ".."), ("lnk", "symbolic link")):
        at.text_input(key=S.W_SCALE_FOLDER).input(name).run()
        at.button(key=S.W_SCALE_EXPORT).click().run()
        assert not at.exception
        assert any(message in e.value for e in at.error), (name, [e.value for e in at.error])
    assert (root / "keep.txt").read_text() == "kept" and not (root / "lnk").exists()
    assert not (root.parent / "exports.manifest.json").exists() and not (tmp_path / "planted.json").exists()


def test_page_draws_cluster_names_at_their_centres_in_distinct_colours(scale_env):
    """Issue 14 A6: each cluster's name (plain text) at the median of its drawn points; noise grey."""
    from core.palette import NOISE_COLOR, plain_label

    ws, emb, res = scale_env
    ids, xy, labels = _map(res)
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    fig = json.loads(chart(at).proto.spec)
    names = {c["id"]: c["name"] for c in json.loads((Path(res.folder) / "_meta.json").read_text())["clusters"]}
    ann = {a["text"]: (a["x"], a["y"]) for a in fig["layout"]["annotations"]}
    named = sorted(int(c) for c in np.unique(labels) if c >= 0)
    assert set(ann) == {plain_label(names[c]) for c in named}
    for c in named:  # every row is drawn here (under the cap), so the centre is the cluster's median
        assert ann[plain_label(names[c])] == pytest.approx(tuple(np.median(xy[labels == c], axis=0)), rel=1e-5, abs=1e-5)
    colors = [t["marker"]["color"] for t in fig["data"]]
    noise = [t["marker"]["color"] for t in fig["data"] if t["name"] == names.get(-1, "unclustered")]
    assert all(c == NOISE_COLOR for c in noise)
    assert len(set(colors) - {NOISE_COLOR}) == len(named)


def test_page_names_what_the_ray_engine_cannot_run_from_its_declarations(scale_env, monkeypatch):
    """The page's pick box and its "Not on the Ray engine" caption follow the declarations
    (pick registry, SelectParams field metadata): a field newly declared local-only shows up."""
    from core.engines import base
    from core.selection import REGISTRY, engine_picks
    from tests.fakes import params_with_a_local_only_field

    Extended = params_with_a_local_only_field()

    monkeypatch.setattr(base, "SelectParams", Extended)
    at = open_page(S.PAGE_BUDGET)
    no_errors(at)
    assert tuple(at.selectbox(key=S.W_PICK).options) == engine_picks("ray")
    notes = [c.value for c in at.caption if c.value.startswith("Not on the Ray engine")]
    assert len(notes) == 1
    for name in ("dedup", "budget_unit", "strata_column", "reference_path", "soft_noise_threshold", "score_column",
                 "fancy", *(p for p, m in REGISTRY.items() if "ray" not in m.engines)):
        assert name in notes[0], name


def test_navigation_lists_the_four_pages_and_no_at_scale_page(empty_env, monkeypatch):
    """The sharded map runs on the Map/Budget/Export pages: app.py's navigation has no At scale page."""
    import streamlit as st

    titles = []
    real = st.navigation

    def spy(pages, *a, **k):
        titles[:] = [p.title for p in pages]
        return real(pages, *a, **k)

    monkeypatch.setattr(st, "navigation", spy)
    at = new_app()
    at.run()  # app.py itself (switch_page would run a page file directly)
    assert not at.exception
    assert titles == ["Data", "Map", "Budget", "Export"]
    assert not (Path(S.REPO_ROOT) / "pages" / "scale.py").exists()


def test_engine_choice_persists_from_map_to_budget_to_export(scale_env):
    """One engine per dataset, chosen on the Map page: Budget and Export follow it and say so."""
    from core.selection import engine_picks

    ws, emb, res = scale_env
    # a pick and a noise choice the Ray engine does not run, as set on a local map's Budget page
    at = open_page(S.PAGE_MAP, state={S.K_PINS: set(), S.K_BANS: set(), S.C_PICK: "score", S.C_NOISE: "own budget"})
    no_errors(at)
    assert _engine_radio(at).value == "ray" and len(at.get("plotly_chart")) == 1
    _engine_radio(at).set_value("local").run()
    no_errors(at)
    assert not at.get("plotly_chart") and any("No map of this dataset yet" in i.value for i in at.info)
    at.switch_page(S.PAGE_BUDGET).run()
    no_errors(at)
    assert any(c.value.startswith("Engine: In memory (local)") for c in at.caption)
    assert any("no map of this dataset yet" in i.value for i in at.info)  # the local Budget page's guidance
    at.switch_page(S.PAGE_MAP).run()
    assert _engine_radio(at).value == "local"  # kept across pages
    _engine_radio(at).set_value("ray").run()
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert any(c.value.startswith("Engine: Sharded (Ray)") for c in at.caption)
    assert any("No budget has been set" in i.value for i in at.info)
    at.switch_page(S.PAGE_BUDGET).run()
    no_errors(at)
    assert any(c.value.startswith("Engine: Sharded (Ray)") for c in at.caption)
    assert tuple(at.selectbox(key=S.W_PICK).options) == engine_picks("ray")
    assert at.selectbox(key=S.W_PICK).value == "random" and at.selectbox(key=S.W_NOISE).value == "include"
    at = _budget(at, 50)
    assert metric_value(at, "Rows in the subset") == "50"
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert metric_value(at, "Rows to export") == "50"
    assert at.button(key=S.W_SCALE_EXPORT) is not None
    assert list(at.session_state[S.K_ENGINE].values()) == ["ray"]  # one choice, for this dataset


def test_a_workspace_with_an_in_memory_map_starts_on_the_local_engine(map_env):
    """An in-memory map and no sharded one: Map, Budget and Export run locally and say so."""
    ws, data = map_env
    at = open_page(S.PAGE_MAP)
    no_errors(at)
    assert _engine_radio(at).value == "local"
    assert metric_value(at, "Selected rows") == "0"  # the local Map page's own panel
    at.switch_page(S.PAGE_BUDGET).run()
    no_errors(at)
    assert any(c.value.startswith("Engine: In memory (local)") for c in at.caption)
    assert int(metric_value(at, "Rows in the subset")) > 0
    at.switch_page(S.PAGE_EXPORT).run()
    no_errors(at)
    assert any(c.value.startswith("Engine: In memory (local)") for c in at.caption)
    assert int(metric_value(at, "Rows to export")) > 0
