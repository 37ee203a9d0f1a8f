"""k nearest neighbours for the map: exact (scikit-learn) on small sets, pynndescent (as umap-learn
calls it) above EXACT_KNN_MAX_ROWS rows, and queries of new rows against a fitted set."""

from __future__ import annotations

import numpy as np

EXACT_KNN_MAX_ROWS = 20_000



def knn(vectors: np.ndarray, k: int, metric: str, seed: int):
    """k nearest neighbours of every row: (indices (n, k) int32, distances (n, k) float32, search index
    or None).  Exact (scikit-learn, brute force) up to EXACT_KNN_MAX_ROWS rows, else pynndescent.
    Each row lists itself first, even among exact duplicates."""
    n = len(vectors)
    k = min(k, n)
    if n <= EXACT_KNN_MAX_ROWS:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(vectors)
        dist, idx = nn.kneighbors(vectors)
        # Put each point first in its own row, even among exact duplicates.
        for row in np.nonzero(idx[:, 0] != np.arange(n))[0]:
            where = np.nonzero(idx[row] == row)[0]
            j = where[0] if len(where) else k - 1
            idx[row, 1 : j + 1] = idx[row, 0:j].copy()
            dist[row, 1 : j + 1] = dist[row, 0:j].copy()
            idx[row, 0], dist[row, 0] = row, 0.0
        return idx.astype(np.int32), dist.astype(np.float32), None
    return nndescent(vectors, k, metric, seed)


def nndescent(vectors: np.ndarray, k: int, metric: str, seed: int):
    """Approximate kNN (pynndescent, as umap-learn calls it): (indices, distances, index).
    Used above EXACT_KNN_MAX_ROWS rows; core.runtime.warmup compiles it on a tiny array."""
    from umap.umap_ import nearest_neighbors

    idx, dist, index = nearest_neighbors(
        vectors, n_neighbors=k, metric=metric, metric_kwds={}, angular=False,
        random_state=np.random.RandomState(seed), low_memory=True,
    )
    return idx.astype(np.int32), dist.astype(np.float32), index


def knn_graph(vectors: np.ndarray, n_neighbors: int, metric: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (n, k), self included as the first neighbour."""
    idx, dist, _ = knn(vectors, n_neighbors, metric, seed)
    return idx, dist


def query_knn(fit_vectors: np.ndarray, index, queries: np.ndarray, k: int, metric: str):
    """The ``k`` nearest fit rows of each query row: (indices, distances)."""
    if index is not None:
        eps = 0.24 if getattr(index, "_angular_trees", False) else 0.12
        idx, dist = index.query(queries, k, epsilon=eps)
        return idx.astype(np.int32), dist.astype(np.float32)
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(fit_vectors)
    dist, idx = nn.kneighbors(queries)
    return idx.astype(np.int32), dist.astype(np.float32)
