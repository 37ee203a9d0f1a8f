"""Export (core.stages.export, core.manifest): rows + manifest, atomic writes, reproduce.
(The metrics: tests/unit/stages/test_metrics.py.)"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from core.stages.cluster import ClusterParams
from core.stages.embed import EmbedParams
from core.stages.export import export_rows, format_for
from core.manifest import build_manifest, ids_digest, read_manifest, write_manifest
from core.stages.sources import fingerprint_files
from core.stages.naming import LabelParams
from core.stages.metrics import selection_metrics
from core.engines.local import reproduce, run_selection
from core.stages.project import ProjectParams
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import atomic_write_json
from tests.fakes import TopicEncoder, read_any, write_table

SIEVE_COLS = ["sieve_cluster_id", "sieve_cluster_name", "sieve_rank", "sieve_reason"]


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
