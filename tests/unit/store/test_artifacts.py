"""Version and parameter drift: a workspace made by another schema version, or with
other parameters, is detected and rebuilt, never misread."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import core.store.artifacts as wsmod
from core.stages.cluster import ClusterParams
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec, current_dataset
from core.engines.local import MapParams, build_map, load_map
from core.store.workspace import SieveError, Workspace
from tests.fakes import HashEncoder, write_table


@pytest.fixture
def built(tmp_path):
    words = ["bread oven flour", "python list loop", "brake tyre oil"]
    table = pa.table({"id": list(range(90)), "text": [f"{words[i % 3]} question {i}" for i in range(90)]})
    path = write_table(table, tmp_path / "t.parquet")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    keys = build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    return ws, path, keys


def _set_stored_schema(ws: Workspace, version) -> None:
    with ws.connect() as con:
        con.execute("UPDATE sieve_meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def test_older_schema_is_rebuilt_not_misread(built, monkeypatch):
    ws, path, keys = built
    monkeypatch.setattr(wsmod, "SCHEMA_VERSION", wsmod.SCHEMA_VERSION + 1)  # this Sieve is newer
    with pytest.raises(SieveError, match="no dataset yet"):
        current_dataset(ws)  # derived state of the old schema was dropped on open
    assert not (ws.root / "artifacts").exists() and not (ws.root / "cache").exists()
    assert ws.get_meta("schema_version") == wsmod.SCHEMA_VERSION
    info, cached = ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    assert not cached and info.n_rows == 90
    new = build_map(ws, MapParams(), encoder=HashEncoder(dim=16))
    assert not any(new.cached.values())  # recomputed under the new schema
    assert new.embed != keys.embed  # and stored under new keys
    assert len(load_map(ws, new).labels) == 90


def test_newer_schema_is_refused(built):
    ws, _, _ = built
    _set_stored_schema(ws, wsmod.SCHEMA_VERSION + 5)
    with pytest.raises(SieveError, match="newer Sieve"):
        current_dataset(ws)


def test_unversioned_workspace_counts_as_old(built):
    ws, _, _ = built
    with ws.connect() as con:
        con.execute("DELETE FROM sieve_meta WHERE key = 'schema_version'")
    with pytest.raises(SieveError, match="no dataset yet"):
        current_dataset(ws)


def test_changed_parameters_recompute_only_later_stages(built):
    ws, _, keys = built
    new = build_map(ws, MapParams(cluster=ClusterParams(min_cluster_size=7)), encoder=HashEncoder(dim=16))
    assert new.cached == {"embed": True, "project": True, "cluster": False, "label": False}
    assert (new.embed, new.project) == (keys.embed, keys.project)
    assert new.cluster != keys.cluster
    # both results stay readable under their own keys
    assert len(load_map(ws, keys).labels) == len(load_map(ws, new).labels) == 90


def test_artifact_from_another_schema_is_not_read(built):
    ws, _, keys = built
    meta = ws.artifact_dir("cluster", keys.cluster) / "meta.json"
    import json

    d = json.loads(meta.read_text())
    d["schema"] = wsmod.SCHEMA_VERSION - 1
    meta.write_text(json.dumps(d))
    with pytest.raises(SieveError, match="schema"):
        ws.load_artifact("cluster", keys.cluster)


def test_missing_chunk_file_is_recomputed_not_misread(built):
    """A cache entry whose chunk file vanished is embedded again, never read as garbage."""
    from core.stages.embed import EmbedParams, load_embeddings, run_embed

    ws, _, keys = built
    _, before = load_embeddings(ws, keys.embed)
    for chunk in (ws.root / "cache" / "embed").rglob("*.npy"):
        chunk.unlink()
    import shutil

    shutil.rmtree(ws.artifact_dir("embed", keys.embed))
    enc = HashEncoder(dim=16)
    res = run_embed(ws, EmbedParams(), encoder=enc)
    assert res.n_computed == 90 and len(enc.texts_seen) == 90
    _, after = load_embeddings(ws, res.key)
    assert np.array_equal(np.asarray(before), np.asarray(after))
