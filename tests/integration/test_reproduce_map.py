"""Reproducing a map from a manifest: the exported map file (sidecar) that lets a parallel
map reproduce in a fresh workspace (missing, corrupt and tampered files named), and old
manifests without the fast-map fields replaying the exact path with their old cache keys.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.stages import project as P
from core.stages.cluster import ClusterParams, cluster_key
from core.manifest import build_manifest, read_manifest, write_manifest
from core.map_sidecar import map_sidecar_name
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.engines.local import MapParams, build_map, load_map, reproduce, run_selection
from core.stages.project import ProjectParams, project_key
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import stage_key
from tests.fakes import TopicEncoder, write_table


def _topic_table(n_per: int = 70):
    import pyarrow as pa

    topics = ["apples", "trains", "violins", "glaciers", "poetry"]
    texts, tops = [], []
    for t in topics:
        for i in range(n_per):
            texts.append(f"{t} note number {i} about {t}")
            tops.append(t)
    return pa.table({"text": texts, "topic": tops})


def _mapped(tmp_path, params: MapParams):
    table = _topic_table()
    path = write_table(table, tmp_path / "data.parquet")
    enc = TopicEncoder(dict(zip(table.column("text").to_pylist(), table.column("topic").to_pylist())))
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    keys = build_map(ws, params, encoder=enc)
    data = load_map(ws, keys)
    sel_params = SelectParams(budget=30, policy="equal", pick="diverse", seed=3)
    sel = run_selection(ws, data, sel_params)
    return ws, enc, data, sel_params, sel


def test_parallel_map_reproduces_in_a_fresh_workspace_through_the_map_file(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "PARALLEL_MIN_ROWS", 0)
    params = MapParams()
    ws, enc, data, sel_params, sel = _mapped(tmp_path, params)
    mpath = tmp_path / "out" / "subset.parquet.manifest.json"
    mpath.parent.mkdir()
    write_manifest(mpath, build_manifest(data, params, sel_params, sel), data)
    sidecar = mpath.with_name(map_sidecar_name(mpath))
    assert sidecar.name == "subset.parquet.manifest.map.npz" and sidecar.is_file()
    man = read_manifest(mpath)
    assert man["map"]["required"] is True and man["map"]["file"] == sidecar.name
    assert man["project"]["params"]["exact"] is False

    again_data, again, _, _ = reproduce(Workspace(tmp_path / "fresh"), man, encoder=enc, manifest_path=mpath)
    assert again.row_ids.tolist() == sel.row_ids.tolist()
    np.testing.assert_array_equal(again_data.labels, data.labels)
    np.testing.assert_array_equal(again_data.xy, data.xy)
    assert again_data.keys.project == data.keys.project and again_data.keys.cluster == data.keys.cluster
    assert any("imported from" in n for n in again_data.notes)

    # the original workspace still has the map: it is reused, the file is not needed
    moved = tmp_path / "elsewhere.npz"
    shutil.move(sidecar, moved)
    _, same, _, _ = reproduce(ws, man, encoder=enc, manifest_path=mpath)
    assert same.row_ids.tolist() == sel.row_ids.tolist()
    # a fresh workspace without the file: a clear error naming it
    with pytest.raises(SieveError, match=r"subset\.parquet\.manifest\.map\.npz.*missing"):
        reproduce(Workspace(tmp_path / "fresh2"), man, encoder=enc, manifest_path=mpath)
    # a corrupted file (not a zip) and a tampered one (valid, other numbers)
    sidecar.write_bytes(b"not a map")
    with pytest.raises(SieveError, match=r"subset\.parquet\.manifest\.map\.npz.*not a readable"):
        reproduce(Workspace(tmp_path / "fresh3"), man, encoder=enc, manifest_path=mpath)
    with np.load(moved) as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    arrays["xy"][0, 0] += 1.0
    with open(sidecar, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(SieveError, match=r"subset\.parquet\.manifest\.map\.npz.*hash"):
        reproduce(Workspace(tmp_path / "fresh4"), man, encoder=enc, manifest_path=mpath)


def test_old_manifest_without_the_new_fields_reproduces_with_the_exact_path(tmp_path):
    params = MapParams(project=ProjectParams(exact=True, fit_sample=None),
                       cluster=ClusterParams(fit_sample=None, soft=True, merge_duplicates=False, auto_rule=1,
                                             assign_noise=None))
    ws, enc, data, sel_params, sel = _mapped(tmp_path, params)
    man = json.loads(json.dumps(build_manifest(data, params, sel_params, sel)))
    assert man["map"]["required"] is False
    # what a manifest written before `exact` existed looks like
    for k in ("exact", "fit_sample"):
        del man["project"]["params"][k]
    for k in ("fit_sample", "soft"):
        del man["cluster"]["params"][k]
    for k in ("merge_duplicates", "algorithm", "auto_rule", "assign_noise"):  # later fields, at their legacy values here
        man["cluster"]["params"].pop(k, None)
    del man["map"]
    old_project = dict(man["project"]["params"])
    old_cluster = dict(man["cluster"]["params"])
    # the legacy cache keys are unchanged, so old workspaces keep their artifacts
    assert data.keys.project == stage_key("project", old_project, data.keys.embed)
    assert data.keys.cluster == stage_key("cluster", {"params": old_cluster, "version": 2}, data.keys.project)

    fresh = Workspace(tmp_path / "fresh")
    again_data, again, map_params, _ = reproduce(fresh, man, encoder=enc)  # no map file anywhere
    assert map_params.project.exact is True and map_params.project.fit_sample is None
    assert map_params.cluster.fit_sample is None and map_params.cluster.soft is True
    assert again.row_ids.tolist() == sel.row_ids.tolist()
    np.testing.assert_array_equal(again_data.xnd, data.xnd)  # recomputed bit for bit
    assert again_data.keys.project == project_key(map_params.project, again_data.keys.embed) == data.keys.project
    assert again_data.keys.cluster == cluster_key(map_params.cluster, again_data.keys.project)
    assert ProjectParams.from_dict({"seed": 1}).exact is True and ProjectParams().exact is False
