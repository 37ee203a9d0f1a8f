"""core.stages.cluster: ClusterParams (old dicts keep their key), the algorithm's inputs, and
clustering a sample then assigning the rest."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from core.stages.cluster import NOISE, ClusterParams, cluster, cluster_key
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


def _ari(a, b) -> float:
    return adjusted_rand_score(np.asarray(a), np.asarray(b))


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
