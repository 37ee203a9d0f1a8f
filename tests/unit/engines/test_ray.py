"""The Ray engine (core/engines/ray/) on a local Ray instance of 2 CPUs.

* embedding through Ray gives the local path's vectors (real packaged model, the first
  600 rows of the bundled sample) and, fitted on every row, the local map's clusters;
* a worker killed mid-run is restarted and the run completes; a run that fails resumes
  and skips finished shards; either way every row is embedded exactly once;
* fit-on-sample + parallel assignment agrees with a full fit (ARI >= 0.8) on synthetic
  384-d vectors with 5-D cluster structure, scaled down to 3,000 rows (the 200k-row case
  is measured by ``bench/ray_throughput.py --ari-rows 200000``);
* selection on counts + per-cluster parallel picks gives exactly the in-memory
  ``core.selection.select`` rows; export writes shards + a manifest, and the manifest
  reproduces the same row ids in a fresh workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.fakes import REPO_ROOT as ROOT
from tests.fakes import SAMPLE_CSV, CrashOnceEncoder, EncoderFactory, FailUntilEncoder, HashEncoder

EMBED_ROWS = 600  # the real-model comparison runs on the first 600 rows of prompts.csv (for speed)


@pytest.fixture(scope="module")
def ray_session():
    import ray

    from core.engines import ray as scale

    scale.connect(num_cpus=2, object_store_memory=400 * 2**20,
                  env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])})
    yield ray
    ray.shutdown()


def _ingest(ws, path: Path, text: str = "text", vectors: str | None = None):
    from core.stages.ingest import IngestParams, ingest
    from core.stages.dataset import TextSpec

    return ingest(ws, IngestParams(str(path), TextSpec(column=text), vectors))[0]


def _shard_rows(folder: Path) -> pa.Table:
    """Every vector shard file, concatenated (no dedup: duplicates would show)."""
    tables = [pq.read_table(p) for p in sorted(folder.glob("vec-*.parquet"))]
    return pa.concat_tables(tables)


def _synthetic(n: int, k: int = 8, dim: int = 384, latent: int = 5, seed: int = 0):
    """``k`` Gaussian clusters in a 5-D subspace of R^384 plus a little isotropic noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, latent)) * 3
    truth = rng.integers(0, k, n)
    z = centres[truth] + rng.normal(size=(n, latent)) * 0.35
    basis = np.linalg.qr(rng.normal(size=(dim, latent)))[0]
    x = z @ basis.T + rng.normal(size=(n, dim)) * 0.05
    return x.astype(np.float32), truth


# -- 1. embedding --------------------------------------------------------------------------


@pytest.mark.slow
def test_ray_embedding_matches_local_vectors_and_clusters(tmp_path, ray_session, sieve_real_encoder):
    import duckdb

    from core.engines import ray as scale
    from core.stages.cluster import ClusterParams, cluster
    from core.stages.distinct import duplicate_groups
    from core.stages.embed import EmbedParams, load_embeddings, run_embed
    from core.stages.project import ProjectParams, project
    from core.store.workspace import Workspace

    import pyarrow.csv as pcsv

    sub = pcsv.read_csv(SAMPLE_CSV).slice(0, EMBED_ROWS)
    path = tmp_path / "prompts600.parquet"
    pq.write_table(sub, path)
    ws = Workspace(tmp_path / "ws")
    info = _ingest(ws, path)

    res = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=250, device="cpu", workers=2))
    assert res.n_shards == 3 and res.n_computed == 3 and res.workers == 2
    assert res.n_rows == info.n_embeddable
    # DuckDB reads the shard folder directly
    n = duckdb.sql(f"SELECT count(*), count(DISTINCT sieve_row_id) FROM read_parquet('{res.glob}')").fetchall()[0]
    assert n == (info.n_embeddable, info.n_embeddable)

    local = run_embed(ws, EmbedParams(device="cpu"), encoder=sieve_real_encoder)
    ids_l, vec_l = load_embeddings(ws, local.key)
    ids_r, vec_r = scale.load_vectors(res.folder)
    assert np.array_equal(np.asarray(ids_l), ids_r)
    vec_l = np.asarray(vec_l)
    assert np.abs(vec_l - vec_r).max() < 1e-4
    assert (np.sum(vec_l * vec_r, axis=1) > 0.99999).all()

    again = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=250, device="cpu", workers=2))
    assert (again.n_computed, again.n_skipped) == (0, 3)

    # fitted on the whole sample: the local map's clusters (the default map rule)
    map_params = scale.ScaleMapParams(sample_size=10_000, cluster=ClusterParams())
    m = scale.scale_map(ws, res.folder, map_params)
    assert m.n_sample == info.n_embeddable
    labels_r = scale.load_scaled_map(m.folder).column("cluster").to_numpy()
    # identical prompts are clustered as one point, as the sharded map does when its sample is everything;
    # the sharded map keeps HDBSCAN's unclustered rows (no soft membership there: ScaleMapParams sets
    # assign_noise=None), so the local map it must equal is the one with the same cluster params
    # It is fitted on the shard vectors: they match the local ones to 1e-4 (above), but on another
    # machine's thread counts that last-digit noise alone can move UMAP (CI saw ARI 0.94), and this
    # checks the map pipelines, not the encoder again.
    local_params = map_params.cluster
    labels_l = cluster(project(vec_r, ProjectParams(exact=True)).xnd, local_params, groups=duplicate_groups(vec_r)).labels
    assert len(set(labels_l.tolist())) > 3
    assert adjusted_rand_score(labels_l, labels_r) == 1.0


# -- 2. a killed worker, a failed run ---------------------------------------------------------


def _crash_data(tmp_path: Path, n: int = 900) -> Path:
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"text": [f"row {i} about topic {i % 7}" for i in range(n)]}), path)
    return path


@pytest.mark.slow
def test_killed_worker_and_failed_run_resume_without_lost_or_duplicated_rows(tmp_path, ray_session):
    from core.engines import ray as scale
    from core.store.workspace import Workspace

    path = _crash_data(tmp_path)
    params = scale.ScaleEmbedParams(shard_rows=100, workers=2)
    clean_ws = Workspace(tmp_path / "clean")
    _ingest(clean_ws, path)
    clean = scale.embed_shards(clean_ws, params, encoder_factory=EncoderFactory(HashEncoder, 16, 5))
    ref = _shard_rows(clean.folder)
    ref_vec = dict(zip(ref.column(0).to_pylist(), scale.arrow_vectors(ref.column(1))))
    assert len(ref_vec) == ref.num_rows == 900

    # (a) a worker process dies mid-run: Ray restarts the actor and retries its shard
    ws = Workspace(tmp_path / "killed")
    _ingest(ws, path)
    marker = tmp_path / "killed.marker"
    factory = EncoderFactory(CrashOnceEncoder, str(marker), "row 450 about topic 2")
    res = scale.embed_shards(ws, params, encoder_factory=factory)
    assert marker.is_file(), "the worker was never killed"
    got = _shard_rows(res.folder)
    ids = got.column(0).to_numpy()
    assert len(ids) == len(np.unique(ids)) == 900
    for i, v in zip(ids.tolist(), scale.arrow_vectors(got.column(1))):
        assert np.array_equal(v, ref_vec[i])

    # (b) the run fails on one shard; the re-run skips the finished shards
    ws2 = Workspace(tmp_path / "failed")
    _ingest(ws2, path)
    allow = tmp_path / "allow"
    factory = EncoderFactory(FailUntilEncoder, str(allow), "row 850 about topic 3")
    with pytest.raises(Exception):
        scale.embed_shards(ws2, params, encoder_factory=factory)
    folder = next((ws2.root / "shards" / "embed").iterdir())
    done_before = sorted(p.name for p in folder.glob("vec-*.parquet"))
    assert "vec-000000000800-000000000900.parquet" not in done_before
    for p in done_before:  # whatever exists under a final name is whole
        assert pq.read_metadata(folder / p).num_rows == 100
    allow.write_text("ok")
    res2 = scale.embed_shards(ws2, params, encoder_factory=factory)
    assert res2.n_skipped == len(done_before) and res2.n_computed == 9 - len(done_before)
    got = _shard_rows(res2.folder)
    ids = got.column(0).to_numpy()
    assert len(ids) == len(np.unique(ids)) == 900
    for i, v in zip(ids.tolist(), scale.arrow_vectors(got.column(1))):
        assert np.array_equal(v, ref_vec[i])


# -- 3. map, selection, export, reproduce at scale (synthetic vectors) ---------------------------


@pytest.fixture(scope="module")
def synthetic_map(tmp_path_factory, ray_session):
    from core.engines import ray as scale
    from core.store.workspace import Workspace

    root = tmp_path_factory.mktemp("scale_map")
    x, truth = _synthetic(3000)
    path = root / "synthetic.parquet"
    pq.write_table(pa.table({"text": [f"row {i}" for i in range(len(x))],
                             "vec": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])}), path)
    ws = Workspace(root / "ws")
    _ingest(ws, path, vectors="vec")
    emb = scale.embed_shards(ws, scale.ScaleEmbedParams(shard_rows=750))
    m = scale.scale_map(ws, emb.folder, scale.ScaleMapParams(sample_size=750, sample_seed=1))
    return root, path, ws, x, truth, emb, m


@pytest.mark.slow
def test_sample_fit_and_parallel_assignment_agree_with_a_full_fit(synthetic_map):
    from core.engines import ray as scale
    from core.stages.cluster import ClusterParams
    from core.stages.project import ProjectParams

    _, _, _, x, truth, emb, m = synthetic_map
    assert (m.n_rows, m.n_sample, m.n_computed) == (3000, 750, 4)
    tbl = scale.load_scaled_map(m.folder, ("sieve_row_id", "x", "y", "cluster", "sampled"))
    ids = tbl.column("sieve_row_id").to_numpy()
    assert np.array_equal(ids, np.arange(3000))  # every row exactly once
    assert int(np.asarray(tbl.column("sampled").to_numpy(zero_copy_only=False)).sum()) == 750
    assert np.isfinite(tbl.column("x").to_numpy()).all()
    labels = tbl.column("cluster").to_numpy()
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = scale.fit_sample(np.arange(len(x)), xn, ProjectParams(), ClusterParams(), transformable=False)
    score = adjusted_rand_score(full.labels, labels)
    assert score >= 0.8, f"sample fit + assignment vs full fit: ARI {score:.3f}"
    assert adjusted_rand_score(truth, labels) >= 0.8


@pytest.mark.slow
def test_selection_at_scale_equals_in_memory_selection_and_reproduces(synthetic_map, tmp_path):
    import duckdb

    from core.engines import ray as scale
    from core.manifest import read_manifest, write_manifest
    from core.selection import SelectParams, select
    from core.store.workspace import Workspace

    _, path, ws, _, _, emb, m = synthetic_map
    tbl = scale.load_scaled_map(m.folder)
    ids, labels = tbl.column("sieve_row_id").to_numpy(), tbl.column("cluster").to_numpy().astype(np.int32)
    _, vecs = scale.load_vectors(emb.folder)
    params = SelectParams(budget=240, policy="sqrt", pick="diverse", seed=3, min_per_cluster=5, pins=(5, 17),
                          bans=(7, 8, 9))
    sel = scale.scale_select(m.folder, emb.folder, params)
    ref = select(labels, ids, params, vectors=vecs)
    assert np.array_equal(sel.row_ids, ref.row_ids) and np.array_equal(sel.ranks, ref.ranks)
    assert sel.reasons == ref.reasons and sel.allocation == ref.allocation
    assert len(sel) == 240 and {5, 17} <= set(sel.row_ids.tolist()) and not {7, 8, 9} & set(sel.row_ids.tolist())

    rnd = SelectParams(budget=100, policy="equal", pick="random", seed=1)
    assert np.array_equal(scale.scale_select(m.folder, emb.folder, rnd, local=True).row_ids,
                          select(labels, ids, rnd).row_ids)

    out = tmp_path / "subset"
    files = scale.export_scaled(ws, sel, out, rows_per_file=100)
    assert [f.name for f in files] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    got = duckdb.sql(f"SELECT sieve_row_id, sieve_cluster_id FROM read_parquet('{out}/*.parquet')").fetchall()
    assert sorted(r for r, _ in got) == sorted(sel.row_ids.tolist())
    man = scale.ray_manifest(ws, emb.folder, m.folder, params, sel, {"path": str(out), "format": "parquet"})
    mpath = write_manifest(tmp_path / "subset.manifest.json", man)
    man = read_manifest(mpath)
    assert man["engine"] == "ray" and man["scale"]["sample_size"] == 750 and man["scale"]["sample_seed"] == 1

    again, _, map2 = scale.reproduce_scaled(Workspace(tmp_path / "ws2"), man, str(path))
    assert sorted(again.row_ids.tolist()) == man["selected_row_ids"]
    assert np.array_equal(again.row_ids, sel.row_ids)


@pytest.mark.slow
def test_sieve_run_engine_ray_end_to_end_and_reproduce(tmp_path, ray_session):
    """`sieve run --engine ray` as a user runs it (a subprocess joining the local Ray
    instance): real packaged model, sharded embedding, a map fitted on a sample and
    assigned, per-cluster picks on Ray, Parquet shards + manifest; `sieve reproduce` of
    that manifest rebuilds the same row ids; bad options fail before any work."""
    import json

    import duckdb

    from tests.fakes import run_sieve

    import pyarrow.csv as pacsv

    src = tmp_path / "prompts.csv"
    pacsv.write_csv(pacsv.read_csv(SAMPLE_CSV).slice(0, 450), src)
    address = ray_session.get_runtime_context().gcs_address
    ws, out = tmp_path / "ws", tmp_path / "subset"
    common = ["--workspace", str(ws), "--engine", "ray", "--address", address]
    proc = run_sieve("run", str(src), "--text", "text", "--backend", "torch", "--budget", "40", "--pick", "diverse",
                     "--shard-rows", "200", "--sample-size", "300", "--min-cluster-size", "8", "--out", str(out),
                     *common, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    man = json.loads(Path(str(out) + ".manifest.json").read_text())
    assert man["engine"] == "ray" and man["n_selected"] == 40
    assert man["scale"]["n_sample"] == 300 and man["model"]["params"]["backend"] == "torch"
    assert man["scale"]["shard_rows"] == 200
    got = duckdb.sql(f"SELECT sieve_row_id FROM read_parquet('{out}/*.parquet')").fetchall()
    assert sorted(r for (r,) in got) == man["selected_row_ids"]
    again = tmp_path / "again"
    proc = run_sieve("reproduce", str(out) + ".manifest.json", "--out", str(again), "--workspace", str(ws),
                     timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identical 40 row ids" in proc.stderr
    got2 = duckdb.sql(f"SELECT sieve_row_id FROM read_parquet('{again}/*.parquet')").fetchall()
    assert sorted(got2) == sorted(got)
    # options the Ray engine cannot honour fail at once, naming the option, before any embedding
    proc = run_sieve("run", str(src), "--text", "text", "--budget", "10", "--dedup", "exact", "--out",
                     str(tmp_path / "x"), *common, timeout=300)
    assert proc.returncode == 2 and "dedup" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_sieve("run", str(src), "--text", "text", "--budget", "10", "--out", str(out), *common, timeout=300)
    assert proc.returncode == 2 and "not an empty folder" in proc.stderr


def test_auto_backend_follows_the_clusters_gpus(ray_session, monkeypatch):
    """backend="auto" on Ray: torch (fp16 on CUDA) when the workers get GPUs, else the
    local CPU default, onnx-int8; the choice is made before the cache key."""
    from core.engines import ray as scale
    from core.encoders.registry import resolve_backend

    cpu_default = resolve_backend("auto", "cpu")
    assert scale.resolve_cluster_backend("auto") == cpu_default  # this instance has no GPU
    assert scale.resolve_cluster_backend("auto", local=True) == resolve_backend("auto", "auto")
    real = ray_session.available_resources
    monkeypatch.setattr(ray_session, "available_resources", lambda: dict(real(), GPU=4.0))
    assert scale.resolve_cluster_backend("auto") == "torch"
    assert scale.resolve_cluster_backend("cpu") == cpu_default


def test_scale_params_are_validated():
    from core.engines import ray as scale
    from core.selection import SelectParams
    from core.store.workspace import SieveError

    with pytest.raises(SieveError, match="shard_rows"):
        scale.ScaleEmbedParams(shard_rows=0)
    with pytest.raises(SieveError, match="sample_size"):
        scale.ScaleMapParams(sample_size=3)
    with pytest.raises(SieveError, match="dedup"):
        scale.check_select_params(SelectParams(budget=5, dedup="exact"))
    ids = scale.sample_row_ids(np.arange(1000), 100, 4)
    assert len(ids) == 100 and np.array_equal(ids, scale.sample_row_ids(np.arange(1000)[::-1], 100, 4))


def _write_fake_map(folder: Path, n: int = 5000, shards: int = 4, seed: int = 2):
    """Map + vector shards written directly (no Ray): 6 blobs in 2-D, cluster = blob, some noise."""
    from core.engines import ray as scale

    rng = np.random.default_rng(seed)
    blob = rng.integers(0, 6, n)
    xy = rng.normal(size=(n, 2)) * 0.4 + np.stack([np.cos(blob), np.sin(blob)], axis=1) * 4
    labels = np.where(rng.random(n) < 0.05, -1, blob).astype(np.int32)
    vecs = rng.normal(size=(n, 8)).astype(np.float32) + blob[:, None]
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    step = n // shards
    for s in range(shards):
        a, b = s * step, (s + 1) * step if s < shards - 1 else n
        name = scale.shard_name(a, b)
        ids = np.arange(a, b)
        scale.write_parquet_atomic(folder / f"map-{name}.parquet",
                                   scale.map_table(ids, xy[a:b], labels[a:b], np.ones(b - a), ids % 10 == 0))
        scale.write_parquet_atomic(folder / f"vec-{name}.parquet", scale.vector_table(ids, vecs[a:b]))
    return xy, labels, vecs


def test_selection_on_counts_and_per_cluster_picks_equal_select(tmp_path):
    """Without Ray (local=True): the same rows, ranks and reasons as core.selection.select."""
    from core.engines import ray as scale
    from core.selection import SelectParams, select

    _, labels, vecs = _write_fake_map(tmp_path)
    ids = np.arange(len(labels))
    for params in (SelectParams(budget=300, policy="equal", pick="centroid", seed=1, bans=(1, 2, 3)),
                   SelectParams(budget=123, policy="proportional", pick="random", seed=9, noise="exclude",
                                max_per_cluster=40, pins=(4, 10)),
                   SelectParams(budget=90, policy="sqrt", pick="diverse", seed=0, overrides={2: 5})):
        sel = scale.scale_select(tmp_path, tmp_path, params, local=True)
        ref = select(labels, ids, params, vectors=vecs)
        assert np.array_equal(sel.row_ids, ref.row_ids), params
        assert np.array_equal(sel.ranks, ref.ranks) and sel.reasons == ref.reasons
        assert sel.allocation == ref.allocation and len(sel) == params.budget


def test_app_helpers_draw_a_sample_and_apply_a_lasso_to_every_row(tmp_path):
    from core.engines import ray as scale
    from core.explore import points_in_lasso

    xy, labels, _ = _write_fake_map(tmp_path)
    drawn = scale.draw_points(tmp_path, max_points=1000, seed=3)
    assert drawn.num_rows == 1000
    assert set(drawn.column("cluster").to_pylist()) == set(labels.tolist())  # every cluster is drawn
    assert drawn.equals(scale.draw_points(tmp_path, max_points=1000, seed=3))  # the same on every call
    assert scale.draw_points(tmp_path, max_points=10_000).num_rows == len(labels)
    lx, ly = [-1.0, 5.0, 5.0, 0.5], [-1.0, -2.0, 4.5, 3.0]
    got = scale.lasso_row_ids(tmp_path, lx, ly, batch_rows=700)
    assert np.array_equal(got, np.nonzero(points_in_lasso(xy, lx, ly))[0])
    assert len(got) > 100


def test_ray_leaves_builtins_print_alone_so_numba_still_compiles(ray_session):
    """Ray Data's progress bars patch builtins.print; numba then fails to compile any
    function that prints (pynndescent's nn_descent did, in the tests that ran after Ray)."""
    import builtins

    import numpy as np

    from core.nn import similar_pairs

    assert type(builtins.print).__name__ == "builtin_function_or_method"
    rng = np.random.default_rng(0)
    v = rng.standard_normal((300, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v = np.concatenate([v, v[:20]])
    pairs = set(zip(*similar_pairs(v, 0.99, exact_rows=50)))  # the pynndescent path
    assert len(pairs) >= 20
