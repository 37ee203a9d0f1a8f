"""Fast map: parallel UMAP (shared graph + spectral init) vs the exact seeded path, fitting
on a sample and placing/assigning the rest, the exported map file (sidecar) that lets a
parallel map reproduce in a fresh workspace, old manifests, and the numba warm-up."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from core.stages import project as P
from core.runtime import warmup
from core.stages.prewarm import start_background_warmup
from core.stages.cluster import NOISE, ClusterParams, cluster, cluster_key
from core.manifest import build_manifest, read_manifest, write_manifest
from core.map_sidecar import map_sidecar_name
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.engines.local import MapParams, build_map, load_map, reproduce, run_selection
from core.stages.project import ProjectParams, project, project_key
from core.selection import SelectParams
from core.store.workspace import SieveError, Workspace
from core.store.artifacts import stage_key
from tests.fakes import TopicEncoder, blobs_on_sphere, write_table

SIZES = (260, 220, 200, 180, 160, 140)  # 1160 rows, 6 well-separated clusters


def _blobs(dim: int = 32, seed: int = 0):
    centers = np.random.default_rng(100 + seed).standard_normal((len(SIZES), dim))
    v = blobs_on_sphere(centers, SIZES, spread=0.06, seed=seed).astype(np.float32)
    truth = np.repeat(np.arange(len(SIZES)), SIZES)
    return v, truth


@pytest.fixture(scope="module")
def blobs():
    return _blobs()


@pytest.fixture(scope="module")
def exact_map(blobs):
    return project(blobs[0], ProjectParams(exact=True))


def _ari(a, b) -> float:
    return adjusted_rand_score(np.asarray(a), np.asarray(b))


def test_parallel_and_exact_maps_give_the_same_clusters(blobs, exact_map):
    v, truth = blobs
    fast = project(v, ProjectParams(), parallel=True)  # parallel even at this size
    assert not fast.reproducible and exact_map.reproducible
    assert fast.xy.shape == (len(v), 2) and fast.xnd.shape == (len(v), 5) and np.isfinite(fast.xnd).all()
    lf, le = cluster(fast.xnd).labels, cluster(exact_map.xnd).labels
    print(f"ARI parallel vs exact {_ari(lf, le):.3f}; vs truth {_ari(lf, truth):.3f} / {_ari(le, truth):.3f}")
    assert _ari(lf, le) >= 0.9
    assert _ari(lf, truth) >= 0.9 and _ari(le, truth) >= 0.9


def test_exact_path_is_bit_identical_and_small_fast_maps_are_deterministic(blobs, exact_map):
    v, _ = blobs
    again = project(v, ProjectParams(exact=True))
    np.testing.assert_array_equal(again.xy, exact_map.xy)
    np.testing.assert_array_equal(again.xnd, exact_map.xnd)
    # below PARALLEL_MIN_ROWS the shared-graph path runs single-threaded and seeded
    assert len(v) < P.PARALLEL_MIN_ROWS
    a, b = project(v, ProjectParams()), project(v, ProjectParams())
    assert a.reproducible and b.reproducible
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_array_equal(a.xnd, b.xnd)
    assert not np.array_equal(a.xnd, exact_map.xnd)  # it really is the other path


def test_fit_on_a_sample_then_place_the_rest_agrees_with_a_full_fit(blobs, exact_map):
    v, truth = blobs
    sampled = project(v, ProjectParams(fit_sample=400))
    assert any("sample of 400 of 1,160 rows" in n for n in sampled.notes)
    assert np.isfinite(sampled.xy).all() and np.isfinite(sampled.xnd).all()
    full_labels = cluster(exact_map.xnd).labels
    ls = cluster(sampled.xnd).labels
    assert _ari(ls, full_labels) >= 0.9 and _ari(ls, truth) >= 0.9
    # the exact path on a sample is still bit-reproducible
    e1 = project(v, ProjectParams(exact=True, fit_sample=400))
    e2 = project(v, ProjectParams(exact=True, fit_sample=400))
    np.testing.assert_array_equal(e1.xnd, e2.xnd)
    assert _ari(cluster(e1.xnd).labels, full_labels) >= 0.9


def test_cluster_on_a_sample_then_assign_agrees_with_a_full_fit():
    rng = np.random.default_rng(5)
    centres = rng.uniform(-10, 10, (5, 5))
    pts = np.concatenate([c + rng.normal(0, 0.5, (700, 5)) for c in centres] + [rng.uniform(-12, 12, (100, 5))])
    # assign_noise=None: HDBSCAN's own noise on both paths (the sample path has no soft membership to join by)
    full = cluster(pts, ClusterParams(min_cluster_size=60, assign_noise=None))
    part = cluster(pts, ClusterParams(min_cluster_size=60, fit_sample=1000, assign_noise=None))
    assert full.n_clusters == part.n_clusters == 5
    assert any("sample of 1,000 of 3,600 rows" in n for n in part.notes)
    clustered = (full.labels != NOISE) & (part.labels != NOISE)
    print(f"ARI sample-fit-assign vs full: {_ari(part.labels, full.labels):.3f} "
          f"(clustered rows {_ari(part.labels[clustered], full.labels[clustered]):.3f})")
    assert _ari(part.labels, full.labels) >= 0.9
    assert ((part.strength >= 0) & (part.strength <= 1)).all()
    # soft membership: auto (on) for the full fit; not available on a sample, said so
    assert full.params.soft is True and (full.soft_labels[full.labels == NOISE] >= 0).all()
    np.testing.assert_array_equal(part.soft_labels, part.labels)
    off = cluster(pts, ClusterParams(min_cluster_size=60, soft=False, assign_noise=None))
    np.testing.assert_array_equal(off.labels, full.labels)
    np.testing.assert_array_equal(off.soft_labels, off.labels)


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


def test_numba_cache_dir_respects_the_user_and_warmup_is_idempotent(tmp_path, monkeypatch):
    from numba.core import config

    try:
        monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
        assert warmup.configure_numba_cache() == str(tmp_path / "mine")
        monkeypatch.delenv("NUMBA_CACHE_DIR")
        monkeypatch.setenv("SIEVE_CACHE_DIR", str(tmp_path / "sieve"))
        assert warmup.configure_numba_cache() == str(tmp_path / "sieve" / "numba")
        assert (tmp_path / "sieve" / "numba").is_dir() and config.CACHE_DIR == str(tmp_path / "sieve" / "numba")
    finally:
        monkeypatch.undo()
        config.reload_config()

    t1 = start_background_warmup()
    t2 = start_background_warmup()
    assert t1 is t2 and t1.daemon and t1.name == "sieve-warmup"
    assert warmup.wait_for_warmup(timeout=600, knn=True)
    assert warmup.warmup_error() is None and not t1.is_alive()
    # the pynndescent kernels (kNN above EXACT_KNN_MAX_ROWS rows) were compiled too
    from pynndescent import pynndescent_

    assert pynndescent_.process_candidates.signatures and pynndescent_.init_rp_tree.signatures
    assert start_background_warmup() is t1  # still once per process
    assert warmup.enable_disk_cache() == 0  # already enabled for every umap module
