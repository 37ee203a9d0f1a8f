"""HDBSCAN soft membership kept by the cluster stage (used by the soft-noise option)."""

from __future__ import annotations

import numpy as np

from core.stages.cluster import NOISE, ClusterParams, cluster


def test_noise_rows_get_their_nearest_cluster_and_clustered_rows_keep_theirs():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0] * 5, [6.0] * 5, [-6.0, 6.0, -6.0, 6.0, -6.0]])
    blobs = [rng.normal(c, 0.35, (250, 5)) for c in centres]
    # stragglers just outside each blob: likely noise, but clearly nearest to one blob
    strays = [c + rng.normal(0, 3.5, (15, 5)) for c in centres]
    pts = np.concatenate(blobs + strays)
    truth = np.concatenate([np.full(250, i) for i in range(3)] + [np.full(15, i) for i in range(3)])
    # assign_noise=None: the raw HDBSCAN noise and its soft membership (the default joins noise rows)
    res = cluster(pts, ClusterParams(min_cluster_size=40, min_samples=25, assign_noise=None))
    assert res.n_clusters == 3
    clustered = res.labels != NOISE
    assert np.array_equal(res.soft_labels[clustered], res.labels[clustered])
    assert np.array_equal(res.soft_strength[clustered], res.strength[clustered])
    noise = ~clustered
    assert noise.sum() >= 5  # some stragglers really are noise
    # map each cluster id to the blob it covers, then check the noise rows' soft labels
    blob_of = {c: np.bincount(truth[res.labels == c]).argmax() for c in range(3)}
    soft_blob = np.array([blob_of[c] for c in res.soft_labels[noise]])
    assert (soft_blob == truth[noise]).mean() >= 0.8
    assert ((res.soft_strength[noise] >= 0) & (res.soft_strength[noise] <= 1)).all()
    assert (res.soft_labels[noise] >= 0).all()
