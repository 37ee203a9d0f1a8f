"""Metrics (JSD, coverage, NN diversity) and export (rows + manifest, atomic writes, reproduce)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stages.cluster import ClusterParams
from core.stages.embed import EmbedParams
from core.stages.export import export_rows, format_for
from core.manifest import build_manifest, ids_digest, read_manifest, write_manifest
from core.stages.sources import fingerprint_files
from core.stages.naming import LabelParams
from core.stages.metrics import coverage, jensen_shannon, mean_nn_distance, selection_metrics
from core.engines.local import reproduce, run_selection
from core.stages.project import ProjectParams
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import atomic_write_json
from tests.fakes import TopicEncoder, read_any, write_table

SIEVE_COLS = ["sieve_cluster_id", "sieve_cluster_name", "sieve_rank", "sieve_reason"]

# -- metrics ---------------------------------------------------------------------------------

dist = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=12)


@given(dist)
@settings(max_examples=100, deadline=None)
def test_jsd_is_zero_for_identical_distributions(p):
    assert jensen_shannon(np.array(p), np.array(p)) == pytest.approx(0.0, abs=1e-9)
    if sum(p) > 0:
        assert jensen_shannon(np.array(p), 3.5 * np.array(p)) == pytest.approx(0.0, abs=1e-9)  # scale-free


@given(st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n))))
@settings(max_examples=150, deadline=None)
def test_jsd_is_symmetric_and_bounded(pq):
    p, q = map(np.array, pq)
    a, b = jensen_shannon(p, q), jensen_shannon(q, p)
    assert a == pytest.approx(b, abs=1e-9)
    assert 0.0 <= a <= 1.0


def test_jsd_examples():
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert jensen_shannon(np.array([1, 1]), np.array([1, 0])) == pytest.approx(0.3112781, abs=1e-6)
    assert jensen_shannon(np.zeros(3), np.zeros(3)) == 0.0
    assert jensen_shannon(np.zeros(3), np.ones(3)) == 1.0


def test_coverage_ignores_noise():
    labels = np.array([0, 0, 1, 1, 2, 2, -1, -1])
    assert coverage(labels, np.array([0, 2, 6])) == pytest.approx(2 / 3)
    assert coverage(labels, np.array([6, 7])) == 0.0
    assert coverage(labels, np.array([1, 3, 5])) == 1.0
    assert coverage(np.array([-1, -1]), np.array([0])) == 1.0  # only noise: noise is the group


def test_mean_nn_distance_examples():
    v = np.array([[1, 0], [1, 0], [0, 1], [0, 2]], np.float32)
    assert mean_nn_distance(v, np.array([0, 1])) == pytest.approx(0.0, abs=1e-6)
    assert mean_nn_distance(v, np.array([0, 2])) == pytest.approx(1.0)
    assert mean_nn_distance(v, np.array([0, 1, 2, 3])) == pytest.approx(0.0, abs=1e-6)
    assert mean_nn_distance(v, np.array([0])) is None


def test_selection_metrics_counts_and_proportional_vs_equal(sieve_fake_map):
    d = sieve_fake_map.data
    labels = np.asarray(d.labels)
    prop = run_selection(sieve_fake_map.ws, d, SelectParams(budget=80, policy="proportional"))
    eq = run_selection(sieve_fake_map.ws, d, SelectParams(budget=80, policy="equal"))
    mp = selection_metrics(labels, prop.positions)
    me = selection_metrics(labels, eq.positions)
    assert mp.n_full == len(labels) and mp.n_subset == 80
    assert sum(mp.counts_subset.values()) == 80 and sum(mp.counts_full.values()) == len(labels)
    assert mp.counts_subset == {c: int((prop.clusters == c).sum()) for c in mp.counts_full}
    assert mp.coverage == me.coverage == 1.0
    assert mp.jsd < 0.01 < me.jsd  # proportional keeps the distribution, equal flattens a skewed one
    assert mp.nn_distance is None  # no vectors given
    json.dumps(mp.to_dict())


def test_diverse_pick_is_more_spread_out_than_random(sieve_real_map):
    # measured on the real-model map: diverse 0.736, random (seeds 0-4) 0.53-0.64
    d = sieve_real_map.data
    vectors = np.asarray(d.vectors)
    div = run_selection(sieve_real_map.ws, d, SelectParams(budget=60, pick="diverse"))
    d_div = mean_nn_distance(vectors, div.positions)
    d_rnd = []
    for seed in range(5):
        rnd = run_selection(sieve_real_map.ws, d, SelectParams(budget=60, pick="random", seed=seed))
        assert np.array_equal(np.sort(div.clusters), np.sort(rnd.clusters))  # same allocation, only the pick differs
        d_rnd.append(mean_nn_distance(vectors, rnd.positions))
    assert d_div > max(d_rnd)
    assert d_div > 1.1 * np.mean(d_rnd)
    m = selection_metrics(np.asarray(d.labels), div.positions, vectors)
    assert m.nn_distance == pytest.approx(d_div)
    assert m.nn_distance_random is not None and m.nn_distance > m.nn_distance_random


def test_score_pick_through_the_workspace(sieve_fake_map):
    m = sieve_fake_map
    d = m.data
    sel = run_selection(m.ws, d, SelectParams(budget=32, pick="score", score_column="quality"))
    quality = np.asarray(m.table.column("quality").to_pylist())[d.row_ids]
    for c in set(sel.clusters.tolist()):
        got = quality[sel.positions[sel.clusters == c]]
        members = quality[np.asarray(d.labels) == c]
        assert got.tolist() == sorted(members, reverse=True)[: len(got)]
    with pytest.raises(SieveError, match="'topic'"):
        run_selection(m.ws, d, SelectParams(budget=5, pick="score", score_column="topic"))
    with pytest.raises(SieveError, match="'nope'"):
        run_selection(m.ws, d, SelectParams(budget=5, pick="score", score_column="nope"))


# -- export ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_selection(sieve_fake_map):
    params = SelectParams(budget=40, policy="equal", pick="diverse", seed=1, pins=(3, 17), bans=(5,))
    return params, run_selection(sieve_fake_map.ws, sieve_fake_map.data, params)


@pytest.mark.parametrize("ext", ["parquet", "jsonl", "csv"])
def test_export_has_all_columns_and_exactly_the_selected_rows(ext, tmp_path, sieve_fake_map, fake_selection):
    m = sieve_fake_map
    _, sel = fake_selection
    names = m.data.cluster_names
    out = export_rows(m.ws, sel, names, tmp_path / f"out.{ext}")
    assert out == (tmp_path / f"out.{ext}").resolve() and out.is_file()
    t = read_any(out)
    original = m.table.column_names
    assert t.column_names == ["sieve_row_id"] + original + SIEVE_COLS
    rows = t.to_pylist()
    assert len(rows) == len(sel) == 40
    assert sorted(r["sieve_row_id"] for r in rows) == sorted(sel.row_ids.tolist())
    src = m.table.to_pylist()
    expect = {int(r): (int(c), int(k), s) for r, c, k, s in zip(sel.row_ids, sel.clusters, sel.ranks, sel.reasons)}
    for r in rows:
        rid = r["sieve_row_id"]
        for col in ("id", "text", "topic", "source", "lang"):
            assert r[col] == src[rid][col]
        assert r["quality"] == pytest.approx(src[rid]["quality"])
        c, k, s = expect[rid]
        assert (r["sieve_cluster_id"], r["sieve_rank"], r["sieve_reason"]) == (c, k, s)
        assert r["sieve_cluster_name"] == names[c]
    assert {3, 17} <= {r["sieve_row_id"] for r in rows if r["sieve_reason"] == "pinned"}
    assert 5 not in {r["sieve_row_id"] for r in rows}


def test_export_keep_text_and_errors(tmp_path, sieve_fake_map, fake_selection):
    m = sieve_fake_map
    _, sel = fake_selection
    t = read_any(export_rows(m.ws, sel, m.data.cluster_names, tmp_path / "o.parquet", keep_text=True))
    assert "sieve_text" in t.column_names
    assert t.column("sieve_text").to_pylist() == t.column("text").to_pylist()
    assert format_for("x.data", "csv") == "csv"
    with pytest.raises(SieveError, match="x.xlsx"):
        format_for("x.xlsx")
    with pytest.raises(SieveError, match="format"):
        format_for("x.csv", "xml")
    empty = dataclasses.replace(sel, positions=sel.positions[:0], row_ids=sel.row_ids[:0], clusters=sel.clusters[:0],
                                ranks=sel.ranks[:0], reasons=[])
    with pytest.raises(SieveError, match="empty"):
        export_rows(m.ws, empty, m.data.cluster_names, tmp_path / "e.csv")
    assert not (tmp_path / "e.csv").exists()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_export_is_atomic(ext, tmp_path, monkeypatch, sieve_fake_map, fake_selection):
    m = sieve_fake_map
    _, sel = fake_selection
    final = tmp_path / f"out.{ext}"
    real_replace = os.replace
    wrote = []

    def fail_replace(src, dst, *a, **k):
        if str(dst) == str(final.resolve()):
            wrote.append(os.path.getsize(src))  # the data was fully written to the temporary file...
            raise OSError("disk went away")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(SieveError, match="disk went away; no file was written"):  # one line naming the file
        export_rows(m.ws, sel, m.data.cluster_names, final)
    assert wrote and wrote[0] > 0
    assert not final.exists()  # ...but never got the final name
    assert _leftovers(tmp_path) == []

    # an existing file survives a failed overwrite untouched
    final.write_bytes(b"previous export")
    with pytest.raises(SieveError, match="previous file is intact"):
        export_rows(m.ws, sel, m.data.cluster_names, final)
    assert final.read_bytes() == b"previous export"
    assert _leftovers(tmp_path) == []


def test_manifest_write_is_atomic(tmp_path, monkeypatch):
    final = tmp_path / "m.json"
    final.write_text('{"old": true}')

    def broken_fsync(fd):
        raise OSError("fsync failed half-way")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(SieveError, match="fsync failed half-way; the previous file is intact"):
        write_manifest(final, {"new": list(range(1000))})
    with pytest.raises(OSError):
        atomic_write_json(tmp_path / "fresh.json", {"a": 1})
    assert json.loads(final.read_text()) == {"old": True}
    assert not (tmp_path / "fresh.json").exists()
    assert _leftovers(tmp_path) == []


def test_manifest_contents(tmp_path, sieve_fake_map, fake_selection):
    m = sieve_fake_map
    params, sel = fake_selection
    metrics = selection_metrics(m.data.labels, sel.positions, m.data.vectors)
    man = build_manifest(m.data, m.params, params, sel, metrics, {"path": "x.parquet", "format": "parquet"})
    man = json.loads(json.dumps(man))  # JSON-able
    ds = man["dataset"]
    assert ds["fingerprint"] == fingerprint_files([m.path.resolve()])
    assert ds["sources"] == [str(m.path.resolve())]
    assert ds["text"] == {"column": "text", "template": None}
    assert ds["n_rows"] == m.table.num_rows and ds["vector_column"] is None
    assert man["model"]["id"] == m.encoder.model_id and man["model"]["dim"] == m.encoder.dim
    assert man["model"]["params"] == dataclasses.asdict(EmbedParams())
    assert man["project"]["params"] == dataclasses.asdict(ProjectParams()) and man["project"]["params"]["seed"] == 42
    assert man["cluster"]["params"] == dataclasses.asdict(ClusterParams())
    assert man["label"]["params"] == dataclasses.asdict(LabelParams())
    assert man["cluster"]["n_clusters"] == len(set(np.asarray(m.data.labels).tolist()) - {-1})
    s = man["select"]
    assert (s["budget"], s["policy"], s["pick"], s["seed"]) == (40, "equal", "diverse", 1)
    assert s["pins"] == [3, 17] and s["bans"] == [5]
    assert SelectParams.from_dict(s) == params
    budgets = {c["id"]: c["budget"] for c in man["clusters"]}
    assert budgets == {c: sel.allocation.get(c, 0) for c in m.data.cluster_names}
    assert sum(budgets.values()) == 40
    assert {c["id"]: c["selected"] for c in man["clusters"]} == budgets
    assert {c["id"]: c["name"] for c in man["clusters"]} == m.data.cluster_names
    for lib in ("python", "numpy", "duckdb", "pyarrow", "umap-learn", "hdbscan", "scikit-learn"):
        assert man["versions"].get(lib), lib
    assert man["selected_row_ids"] == sorted(sel.row_ids.tolist())
    assert man["n_selected"] == 40
    assert man["selected_ids_sha256"] == ids_digest(sel.row_ids[::-1])
    assert man["metrics"]["n_subset"] == 40
    path = write_manifest(tmp_path / "sub" / "m.json", man)
    assert read_manifest(path) == man


def test_read_manifest_rejects_bad_files(tmp_path):
    with pytest.raises(SieveError, match="does not exist"):
        read_manifest(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(SieveError, match="not valid JSON"):
        read_manifest(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"dataset": {}}')
    with pytest.raises(SieveError, match="'model'"):
        read_manifest(tmp_path / "other.json")
    full = {k: {} for k in ("dataset", "model", "project", "cluster", "select")}
    (tmp_path / "new.json").write_text(json.dumps({**full, "selected_row_ids": [], "manifest_version": 99}))
    with pytest.raises(SieveError, match="version"):
        read_manifest(tmp_path / "new.json")


def test_reproduce_in_a_fresh_workspace_gives_identical_rows(tmp_path, sieve_fake_map, fake_selection):
    m = sieve_fake_map
    params, sel = fake_selection
    man = json.loads(json.dumps(build_manifest(m.data, m.params, params, sel)))
    enc = TopicEncoder(dict(m.encoder.text_topics))
    data, again, map_params, sel_params = reproduce(Workspace(tmp_path / "fresh"), man, encoder=enc)
    assert sel_params == params and map_params == m.params
    assert again.row_ids.tolist() == sel.row_ids.tolist()
    assert again.ranks.tolist() == sel.ranks.tolist() and again.reasons == sel.reasons
    np.testing.assert_array_equal(data.labels, m.data.labels)

    # changed data is refused (naming the fingerprint) unless explicitly allowed
    changed = write_table(m.table.slice(0, m.table.num_rows - 1), tmp_path / "changed.parquet")
    with pytest.raises(SieveError, match="fingerprint"):
        reproduce(Workspace(tmp_path / "fresh2"), man, str(changed), encoder=enc)
