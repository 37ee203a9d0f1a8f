"""Project (UMAP / PCA fallback) and cluster (HDBSCAN): recovery of known topics, noise, tiny inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from core.stages.cluster import NOISE, ClusterParams, cluster, default_min_cluster_size, relabel_by_size, run_cluster
from core.stages.ingest import IngestParams, ingest
from core.stages.dataset import TextSpec
from core.engines.local import MapParams, build_map, load_map
from core.stages.project import MIN_UMAP_ROWS, ProjectParams, project, run_project
from core.stages.knn import knn_graph
from core.store.workspace import SieveError, Workspace
from tests.fakes import TopicEncoder, write_table

# Calibrated on generate_rows(600, seed=3, mess=False) embedded with the real packaged
# all-MiniLM-L6-v2, default MapParams (UMAP seed 42, 5-D, HDBSCAN min_cluster_size=12, the default until
# auto_rule 2 made it 6; the test passes with both):
#   measured ARI 0.991 over clustered rows and 0.989 with noise as its own label
#   (11 other generator seeds at 600 rows: min 0.90, median 0.98).
# Threshold 0.85: a safe margin below every measured value.
ARI_THRESHOLD = 0.85


def _ari(m):
    topics = m.topics()
    labels = np.asarray(m.data.labels)
    clustered = labels != NOISE
    return (adjusted_rand_score(topics[clustered], labels[clustered]), adjusted_rand_score(topics, labels),
            clustered.mean())


def test_real_model_recovers_known_topics(sieve_real_map):
    ari_clustered, ari_all, frac_clustered = _ari(sieve_real_map)
    print(f"real-model cluster recovery: ARI clustered={ari_clustered:.4f} all={ari_all:.4f} "
          f"clustered share={frac_clustered:.3f}")
    assert frac_clustered > 0.8  # ARI over clustered rows is only meaningful if most rows are clustered
    assert ari_clustered >= ARI_THRESHOLD
    assert ari_all >= ARI_THRESHOLD


def test_fake_encoder_map_recovers_topics_exactly(sieve_fake_map):
    # well separated directions: the map must find the topics almost perfectly
    _, ari_all, _ = _ari(sieve_fake_map)
    assert ari_all >= 0.95


def test_map_arrays_are_aligned_and_noise_is_kept(sieve_real_map):
    d = sieve_real_map.data
    n = sieve_real_map.table.num_rows
    assert len(d.labels) == len(d.row_ids) == len(d.xy) == len(d.strength) == len(d.vectors) == n
    assert d.row_ids.tolist() == list(range(n))
    assert d.xy.shape == (n, 2) and np.isfinite(d.xy).all()
    ids = sorted(set(d.labels.tolist()) - {NOISE})
    assert ids == list(range(len(ids)))  # 0..k-1, nothing else besides -1
    sizes = [int((d.labels == c).sum()) for c in ids]
    assert sizes == sorted(sizes, reverse=True)  # 0 = largest
    assert ((d.strength >= 0) & (d.strength <= 1)).all()
    assert {c.id for c in d.clusters} == set(d.labels.tolist())


def test_cluster_marks_scattered_points_as_noise():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0]], float)
    blobs = np.concatenate([c + 0.3 * rng.standard_normal((60, 3)) for c in centres])
    outliers = rng.uniform(-30, 40, size=(25, 3))
    outliers = outliers[np.min(np.linalg.norm(outliers[:, None] - centres[None], axis=2), axis=1) > 5]
    pts = np.concatenate([blobs, outliers])
    res = cluster(pts, ClusterParams(min_cluster_size=10))
    assert len(res.labels) == len(pts)  # noise is never dropped
    assert res.n_clusters == 3
    assert (res.labels[180:] == NOISE).mean() >= 0.8
    assert (res.labels[:180] != NOISE).mean() >= 0.95
    assert adjusted_rand_score(np.repeat([0, 1, 2], 60), res.labels[:180]) > 0.95
    assert res.strength.shape == (len(pts),)


def test_default_min_cluster_size():
    # the default rule (auto_rule 2, issue 16): about sqrt(n)/4; rule 1 (older maps): sqrt(n)/2
    assert default_min_cluster_size(0) == 5
    assert default_min_cluster_size(50) == 5
    assert default_min_cluster_size(600) == 6
    assert default_min_cluster_size(3000) == 14
    assert default_min_cluster_size(50_000) == 56
    assert default_min_cluster_size(10**9) == 1000
    assert [default_min_cluster_size(n, rule=1) for n in (0, 50, 600, 3000, 50_000, 10**9)] == [5, 5, 12, 27, 112, 1000]
    rng = np.random.default_rng(1)
    res = cluster(rng.standard_normal((400, 3)), ClusterParams())
    assert res.params.min_cluster_size == default_min_cluster_size(400) == 5
    assert res.params.min_samples == 5
    assert ClusterParams(min_cluster_size=4).resolved(400).min_samples == 4


def test_real_map_used_the_default_min_cluster_size(sieve_real_map):
    _, meta = sieve_real_map.ws.load_artifact("cluster", sieve_real_map.keys.cluster)
    assert meta["resolved_params"]["min_cluster_size"] == default_min_cluster_size(sieve_real_map.table.num_rows)
    assert meta["params"]["min_cluster_size"] is None


@given(st.lists(st.integers(min_value=-1, max_value=6), max_size=80))
@settings(max_examples=150, deadline=None)
def test_relabel_by_size(raw):
    raw = np.asarray(raw, dtype=np.int64)
    out = relabel_by_size(raw)
    assert len(out) == len(raw)
    assert ((out == NOISE) == (raw == NOISE)).all()
    if (raw >= 0).any():
        assert adjusted_rand_score(raw[raw >= 0], out[raw >= 0]) == pytest.approx(1.0)
    sizes = [int((out == c).sum()) for c in range(len(set(out.tolist()) - {NOISE}))]
    assert sizes == sorted(sizes, reverse=True) and all(s > 0 for s in sizes)


# -- tiny inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3])
def test_tiny_inputs_fall_back_without_crashing(n):
    v = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    p = project(v, ProjectParams(cluster_dims=5))
    assert p.xy.shape == (n, 2) and p.xnd.shape == (n, 5)
    assert np.isfinite(p.xy).all() and np.isfinite(p.xnd).all()
    assert any("PCA" in note for note in p.notes)
    c = cluster(p.xnd)
    assert c.labels.tolist() == [0] * n and c.n_clusters == 1
    assert c.notes and "one cluster" in c.notes[0]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_build_map_on_tiny_datasets(n, tmp_path):
    texts = ["apples and pears", "trains and buses", "violins and cellos"][:n]
    path = write_table(pa.table({"text": texts}), tmp_path / "tiny.csv")
    ws = Workspace(tmp_path / "ws")
    ingest(ws, IngestParams(str(path), TextSpec(column="text")))
    build_map(ws, MapParams(), encoder=TopicEncoder(keywords=["apples", "trains", "violins"]))
    data = load_map(ws)
    assert len(data.labels) == n and data.labels.tolist() == [0] * n
    assert any("PCA" in note for note in data.notes) and any("one cluster" in note for note in data.notes)
    assert [c.size for c in data.clusters] == [n]


def test_small_input_lowers_n_neighbors_with_a_note():
    v = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
    p = project(v, ProjectParams(n_neighbors=15))
    assert p.xy.shape == (12, 2)
    assert any("n_neighbors lowered from 15 to 11" in note for note in p.notes)
    assert MIN_UMAP_ROWS <= 12


def test_project_rejects_bad_vectors():
    with pytest.raises(SieveError, match="NaN"):
        project(np.array([[0.0, np.nan]] * 20, np.float32))
    with pytest.raises(SieveError):
        project(np.zeros((0, 4), np.float32))
    with pytest.raises(SieveError):
        cluster(np.zeros((0, 2)))


def test_projection_is_deterministic_for_a_seed(sieve_fake_map):
    v = np.asarray(sieve_fake_map.data.vectors)[:150]
    a = project(v, ProjectParams(seed=7))
    b = project(v, ProjectParams(seed=7))
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_array_equal(a.xnd, b.xnd)
    assert a.xnd.shape == (150, 5)
    c1, c2 = cluster(a.xnd), cluster(b.xnd)
    np.testing.assert_array_equal(c1.labels, c2.labels)


def test_knn_graph_puts_each_point_first_even_with_duplicates():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((20, 5)).astype(np.float32)
    v[5] = v[3]
    v[6] = v[3]
    idx, dist = knn_graph(v, 4, "euclidean", 0)
    assert idx.shape == (20, 4)
    assert idx[:, 0].tolist() == list(range(20))
    assert (dist[:, 0] == 0).all()
    assert set(idx[3, :3].tolist()) == {3, 5, 6}


def test_stages_are_cached_in_the_workspace(sieve_fake_map):
    m = sieve_fake_map
    key, cached = run_project(m.ws, m.keys.embed, m.params.project)
    assert (key, cached) == (m.keys.project, True)
    ckey, cached = run_cluster(m.ws, m.keys.project, m.params.cluster)
    assert (ckey, cached) == (m.keys.cluster, True)
    keys = build_map(m.ws, m.params, encoder=m.encoder)
    assert keys.cached == {"embed": True, "project": True, "cluster": True, "label": True}
    assert (keys.embed, keys.project, keys.cluster, keys.label) == (m.keys.embed, m.keys.project, m.keys.cluster,
                                                                     m.keys.label)


# -- parameter validation --------------------------------------------------------------------

PROJECT_BAD = {
    "n_neighbors": [1, 0, 2.5, "15", None],
    "min_dist": [-0.1, 1.5, "0.1", None],
    "metric": ["cosinus", "", None],
    "cluster_dims": [1, 101, 2.0, None],
    "cluster_min_dist": [-1, 2.0, "0"],
    "seed": [-1, 1.5, "42", None],
    "exact": [1, "yes", None],
    "fit_sample": [0, 99, 2.5, "1000"],
}
CLUSTER_BAD = {
    "min_cluster_size": [1, 0, -3, 2.5, "10"],
    "min_samples": [0, -1, 1.5, "3"],
    "method": ["dbscan", "", None],
    "epsilon": [-0.5, "0.1", None],
    "fit_sample": [0, 50, 1.5, "1000"],
    "soft": [1, "yes"],
    "merge_duplicates": [1, "yes", None],
    "algorithm": ["kmeans", "", None, 3],
    "auto_rule": [0, 3, True, "2", None],
    "assign_noise": [-0.1, 1.5, True, "0.02"],
}


def test_bad_cases_cover_every_field():
    assert set(PROJECT_BAD) == {f.name for f in dataclasses.fields(ProjectParams)}
    assert set(CLUSTER_BAD) == {f.name for f in dataclasses.fields(ClusterParams)}


@pytest.mark.parametrize("cls,field,value", [(ProjectParams, f, v) for f, vs in PROJECT_BAD.items() for v in vs]
                         + [(ClusterParams, f, v) for f, vs in CLUSTER_BAD.items() for v in vs])
def test_bad_param_raises_value_error_naming_it(cls, field, value):
    with pytest.raises(ValueError) as exc:
        cls(**{field: value})
    assert field in str(exc.value)
