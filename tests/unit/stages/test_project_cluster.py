"""Project (UMAP / PCA fallback) and cluster (HDBSCAN) together: tiny inputs through both,
bad vectors refused by both, and every field of ProjectParams and ClusterParams validated
(one parametrised test over both classes).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.stages.cluster import ClusterParams, cluster
from core.stages.project import ProjectParams, project
from core.store.workspace import SieveError


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


def test_project_rejects_bad_vectors():
    with pytest.raises(SieveError, match="NaN"):
        project(np.array([[0.0, np.nan]] * 20, np.float32))
    with pytest.raises(SieveError):
        project(np.zeros((0, 4), np.float32))
    with pytest.raises(SieveError):
        cluster(np.zeros((0, 2)))


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
