"""core.stages.cluster: ClusterParams (old dicts keep their key), the algorithm's inputs."""

from __future__ import annotations

import numpy as np
import pytest

from core.stages.cluster import ClusterParams, cluster, cluster_key
from core.store.workspace import SieveError


def _blobs(seed=0, sizes=(120, 120, 120, 60, 12)):
    """Well separated Gaussian blobs (the last one small) in 5-D, plus 32-D unit vectors
    that carry the same structure (for the algorithms that cluster the raw vectors)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), 5)) * 12
    pts = np.concatenate([centres[i] + rng.normal(size=(s, 5)) for i, s in enumerate(sizes)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    dirs = rng.normal(size=(len(sizes), 32))
    vec = dirs[truth] + 0.25 * rng.normal(size=(len(truth), 32))
    vec = (vec / np.linalg.norm(vec, axis=1, keepdims=True)).astype(np.float32)
    return pts, vec, truth


def test_old_cluster_params_mean_hdbscan_and_keep_their_key():
    old = {"min_cluster_size": None, "min_samples": None, "method": "eom", "epsilon": 0.0}
    p = ClusterParams.from_dict(old)
    assert p.algorithm == "hdbscan"
    assert "algorithm" not in p.key_dict() and "algorithm" not in ClusterParams().key_dict()
    assert cluster_key(p, "pk") == cluster_key(ClusterParams.from_dict({**old, "algorithm": "hdbscan"}), "pk")
    assert cluster_key(ClusterParams(algorithm="leiden"), "pk") != cluster_key(ClusterParams(), "pk")
    with pytest.raises(SieveError, match="cluster algorithm"):
        ClusterParams(algorithm="kmeans")


def test_vector_algorithms_need_the_vectors():
    pts, _, _ = _blobs()
    with pytest.raises(SieveError, match="needs the embedding vectors"):
        cluster(pts, ClusterParams(algorithm="leiden"))
