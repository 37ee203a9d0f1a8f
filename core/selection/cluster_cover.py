"""Which clusters get a row when the budget cannot give every cluster one (``cluster_choice``).

With a fine map a small budget is smaller than the number of clusters: the allocation's
continuous split gives most clusters less than one row, and rounding (largest remainder,
:func:`core.selection.allocate.largest_remainder`) hands the few whole rows to the clusters
with the largest shares -- the biggest ones (``cluster_choice='size'``, what every manifest
before this option replays).  ``cluster_choice='coverage'`` hands the same number of rows to
the clusters a **weighted facility location** over cluster medoids chooses instead:

    max_S  sum_c w_c * max(0, max_{s in S ∪ A} cos(m_c, m_s))

over every cluster ``c`` (clients, weighted by the policy's weight ``w_c``: ``sqrt(n_c)`` for
``sqrt``, ``n_c`` for ``proportional``, 1 for ``equal``, the target share with ``--target``),
where ``m_c`` is the cluster's medoid and ``A`` the clusters that get at least one row anyway.
Greedy (Nemhauser, Wolsey & Fisher 1978: within 1 - 1/e of the optimum; weighted facility
location: Cornuejols, Fisher & Nemhauser 1977), on the block of medoid similarities computed
once (:func:`core.selection.facility_block.greedy_block`); ties go to the size order.  The
in-cluster pick then runs as usual.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from core.stages.cluster import NOISE

from .facility_block import greedy_block

CLUSTER_CHOICES = ("size", "coverage")
MEDOID_SAMPLE = 256  # members read per cluster to find its medoid (evenly spaced, deterministic)


def cluster_medoids(vectors, members: Mapping[int, np.ndarray], clusters: list[int]) -> np.ndarray:
    """(len(clusters), d) float32 unit vectors: each cluster's medoid -- of up to MEDOID_SAMPLE of
    its ``members`` (positions into ``vectors``, evenly spaced), the one with the highest cosine
    similarity to their mean direction.  A cluster without members gets a zero row."""
    d = int(np.shape(vectors)[1])
    out = np.zeros((len(clusters), d), np.float32)
    for i, c in enumerate(clusters):
        idx = np.asarray(members[c])
        if len(idx) == 0:
            continue
        idx = idx[:: -(-len(idx) // MEDOID_SAMPLE)]
        v = np.asarray(vectors[np.sort(idx)], dtype=np.float32)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        out[i] = v[int(np.argmax(v @ v.mean(axis=0)))]
    return out


def cover_clusters(reps: np.ndarray, weights: np.ndarray, anchored: np.ndarray, flexible: list[int],
                   k: int) -> list[int]:
    """``k`` of the ``flexible`` indices (into ``reps``, in preference order: ties go to the
    earlier) by greedy weighted facility location.  ``reps`` (C, d) unit vectors, ``weights``
    (C,) >= 0 the clients' weights, ``anchored`` (C,) bool the clusters already covered."""
    S = np.maximum(reps @ reps.T, 0.0).astype(np.float32) * np.asarray(weights, np.float32)[:, None]
    cur = S[:, anchored].max(axis=1) if anchored.any() else np.zeros(len(reps), np.float32)
    block = np.ascontiguousarray(S[:, flexible])
    chosen: list[int] = []
    order = greedy_block(block, cur.astype(np.float32), None, chosen.append, lambda: len(chosen) >= k)
    return [flexible[i] for i in order]


def coverage_chooser(vectors, members: Mapping[int, np.ndarray]) -> Callable:
    """A ``choose(weights, anchored, flexible, k)`` for :func:`core.selection.allocate.allocate`:
    cluster ids in, the ``k`` flexible cluster ids whose medoids cover the clusters best out
    (:func:`cover_clusters`).  ``members``: cluster id -> its selectable positions."""

    def choose(weights: Mapping[int, float], anchored: list[int], flexible: list[int], k: int) -> list[int]:
        clusters = sorted(c for c in weights if c != NOISE)
        at = {c: i for i, c in enumerate(clusters)}
        reps = cluster_medoids(vectors, members, clusters)
        w = np.array([weights[c] for c in clusters], np.float64)
        anchor = np.zeros(len(clusters), bool)
        anchor[[at[c] for c in anchored if c in at]] = True
        picked = cover_clusters(reps, w, anchor, [at[c] for c in flexible], k)
        return [clusters[i] for i in picked]

    return choose
