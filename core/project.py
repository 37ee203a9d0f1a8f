"""Project: UMAP to 2-D (for display) and to a few dimensions (for clustering).

The k-nearest-neighbour graph is computed once and shared by both projections.
Tiny inputs (fewer than ``MIN_UMAP_ROWS`` rows) fall back to PCA, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .workspace import SieveError, Workspace, stage_key

METRICS = ("cosine", "euclidean", "manhattan", "correlation")
MIN_UMAP_ROWS = 10
EXACT_KNN_MAX_ROWS = 20_000

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ProjectParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    metric: str = "cosine"
    cluster_dims: int = 5
    cluster_min_dist: float = 0.0
    seed: int = 42

    def __post_init__(self):
        if not isinstance(self.n_neighbors, int) or self.n_neighbors < 2:
            raise SieveError(f"n_neighbors must be an integer >= 2, got {self.n_neighbors!r}")
        for name in ("min_dist", "cluster_min_dist"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not (0.0 <= float(v) <= 1.0):
                raise SieveError(f"{name} must be between 0 and 1, got {v!r}")
        if self.metric not in METRICS:
            raise SieveError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if not isinstance(self.cluster_dims, int) or not (2 <= self.cluster_dims <= 100):
            raise SieveError(f"cluster_dims must be an integer from 2 to 100, got {self.cluster_dims!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SieveError(f"seed must be a non-negative integer, got {self.seed!r}")


@dataclass
class Projection:
    xy: np.ndarray  # (n, 2) float32, for display
    xnd: np.ndarray  # (n, cluster_dims) float32, for clustering
    notes: list[str] = field(default_factory=list)


def knn_graph(vectors: np.ndarray, n_neighbors: int, metric: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (n, k), self included as the first neighbour."""
    n = len(vectors)
    k = min(n_neighbors, n)
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
        return idx.astype(np.int32), dist.astype(np.float32)
    from umap.umap_ import nearest_neighbors

    idx, dist, _ = nearest_neighbors(
        vectors, n_neighbors=k, metric=metric, metric_kwds={}, angular=False,
        random_state=np.random.RandomState(seed), low_memory=True,
    )
    return idx.astype(np.int32), dist.astype(np.float32)


def _pca(vectors: np.ndarray, dims: int) -> np.ndarray:
    n = len(vectors)
    out = np.zeros((n, dims), dtype=np.float32)
    if n < 2:
        return out
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    k = min(dims, len(s))
    comp = u[:, :k] * s[:k]
    # Deterministic sign: the largest-magnitude entry of each component is positive.
    signs = np.sign(comp[np.abs(comp).argmax(axis=0), np.arange(k)])
    signs[signs == 0] = 1
    out[:, :k] = comp * signs
    return out


def project(vectors: np.ndarray, params: ProjectParams = ProjectParams(), progress: Progress | None = None) -> Projection:
    """Pure: vectors (n, d) -> 2-D and n-D coordinates."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SieveError(f"project needs a non-empty 2-D array of vectors, got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise SieveError("vectors contain NaN or infinite values")
    n = len(vectors)
    notes: list[str] = []
    if n < MIN_UMAP_ROWS:
        notes.append(f"only {n} row(s): UMAP needs at least {MIN_UMAP_ROWS}, so PCA was used for the map")
        return Projection(_pca(vectors, 2), _pca(vectors, params.cluster_dims), notes)

    import warnings

    import umap

    k = min(params.n_neighbors, n - 1)
    if k != params.n_neighbors:
        notes.append(f"n_neighbors lowered from {params.n_neighbors} to {k} for {n} rows")
    if progress:
        progress(0, 3, "nearest-neighbour graph")
    idx, dist = knn_graph(vectors, k, params.metric, params.seed)
    results = []
    for step, (dims, min_dist) in enumerate(((2, params.min_dist), (params.cluster_dims, params.cluster_min_dist)), 1):
        if progress:
            progress(step, 3, f"UMAP to {dims}-D")
        reducer = umap.UMAP(
            n_components=dims,
            n_neighbors=k,
            min_dist=min_dist,
            metric=params.metric,
            random_state=params.seed,
            precomputed_knn=(idx, dist, None),
            init="spectral" if n > dims + 2 else "random",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            emb = reducer.fit_transform(vectors)
        results.append(np.asarray(emb, dtype=np.float32))
    if progress:
        progress(3, 3, "projected")
    return Projection(results[0], results[1], notes)


def run_project(ws: Workspace, embed_key: str, params: ProjectParams = ProjectParams(),
                progress: Progress | None = None) -> tuple[str, bool]:
    """Project the embedding artifact ``embed_key``; returns (key, cached)."""
    from .embed import load_embeddings

    key = stage_key("project", params, embed_key)
    if ws.has_artifact("project", key):
        return key, True
    row_ids, vectors = load_embeddings(ws, embed_key)
    proj = project(np.asarray(vectors), params, progress)
    ws.save_artifact(
        "project", key, {"xy": proj.xy, "xnd": proj.xnd, "row_ids": np.asarray(row_ids)},
        {"parent": embed_key, "params": params, "notes": proj.notes},
    )
    return key, False
