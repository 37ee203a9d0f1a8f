"""Soft membership of a map's noise rows: which cluster an unclustered row belongs to most, and how
strongly.  Used by :mod:`core.stages.cluster` (soft labels / strengths of a Clustering, and the
default map's joining of noise rows, ``ClusterParams.assign_noise``).

* HDBSCAN maps: ``hdbscan.prediction.membership_vector`` (the ``hdbscan`` package's soft
  clustering), the largest entry per row.
* Other algorithms (EVoC, PLSCAN, Leiden): the majority cluster among a noise row's
  ``SOFT_KNN`` nearest clustered rows (scipy cKDTree), strength = that majority's share.
"""

from __future__ import annotations

import numpy as np

NOISE = -1
SOFT_KNN = 10


def knn_soft_membership(points: np.ndarray, labels: np.ndarray, strength: np.ndarray, k: int = SOFT_KNN):
    """(soft_labels, soft_strength), (n,) int32 / float32: clustered rows keep their own;
    a noise row gets the majority cluster of its ``k`` nearest clustered rows (scipy
    cKDTree) and that majority's share as strength."""
    from scipy.spatial import cKDTree

    soft_labels, soft_strength = labels.astype(np.int32, copy=True), strength.astype(np.float32, copy=True)
    noise, clustered = np.nonzero(labels == NOISE)[0], np.nonzero(labels != NOISE)[0]
    if len(noise) == 0 or len(clustered) == 0:
        return soft_labels, soft_strength
    k = min(k, len(clustered))
    _, idx = cKDTree(points[clustered]).query(points[noise], k=k)
    near = labels[clustered][np.asarray(idx).reshape(len(noise), k)]
    for i, row in enumerate(near):
        ids, cnt = np.unique(row, return_counts=True)
        soft_labels[noise[i]] = ids[np.argmax(cnt)]
        soft_strength[noise[i]] = cnt.max() / k
    return soft_labels, soft_strength


def hdbscan_soft_membership(model, points, raw, mapping, soft_labels, soft_strength, chunk: int = 4096) -> None:
    """Fill in, for noise rows (``raw`` < 0), their most likely cluster (renumbered by ``mapping``,
    raw id -> id) and its membership, in place in ``soft_labels`` (n,) int32 / ``soft_strength``
    (n,) float32; ``model`` a fitted ``hdbscan.HDBSCAN`` with prediction data
    (``hdbscan.prediction.membership_vector``, Campello et al. 2013 soft clustering)."""
    from hdbscan.prediction import membership_vector

    noise = np.nonzero(raw < 0)[0]
    order = np.array([mapping[k] for k in range(len(mapping))], dtype=np.int32)  # raw id -> renumbered id
    for start in range(0, len(noise), chunk):
        idx = noise[start : start + chunk]
        mv = np.nan_to_num(np.asarray(membership_vector(model, points[idx]), dtype=np.float64), nan=0.0)
        if mv.ndim == 1:
            mv = mv.reshape(len(idx), -1)
        best = mv.argmax(axis=1)
        soft_labels[idx] = order[best]
        soft_strength[idx] = mv[np.arange(len(idx)), best].astype(np.float32)
