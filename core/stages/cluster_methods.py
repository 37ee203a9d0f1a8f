"""Alternative clustering algorithms for the map, besides HDBSCAN on the UMAP n-D projection.

Each is a pure function returning ``(labels, strength)``: labels (n,) int64 with -1 for
noise (not yet renumbered), strength (n,) float32 in [0, 1].  ``core.stages.cluster`` chooses
among them by ``ClusterParams.algorithm`` and renumbers the result by size.

* ``evoc``: EVoC (Embedding Vector Oriented Clustering, L. McInnes; the ``evoc`` package):
  a node embedding of the kNN graph of the *raw embedding vectors* plus density-based
  clustering; the primary (most persistent) cluster layer is used.
* ``plscan``: PLSCAN (persistent multiscale density-based clustering, arXiv 2512.16558;
  ``fast_hdbscan.PLSCAN``) on the UMAP n-D projection: HDBSCAN's hierarchy cut at its
  most persistent resolution.
* ``leiden``: Leiden community detection (Traag, Waltman & van Eck 2019; ``leidenalg`` on
  an ``igraph`` graph) of the UMAP fuzzy kNN graph of the raw vectors
  (modularity with a resolution parameter; every row gets a community, no noise).
"""

from __future__ import annotations

import numpy as np

from core.stages.knn import knn_graph

# The map's cluster algorithms; "hdbscan" is the original one (and what a params dict
# without the field means).
ALGORITHMS = ("hdbscan", "evoc", "plscan", "leiden")
# The algorithms that cluster the raw embedding vectors instead of the UMAP n-D projection.
ON_VECTORS = ("evoc", "leiden")


def evoc_labels(vectors: np.ndarray, seed: int = 0, noise_level: float = 0.5,
                min_cluster_size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """EVoC on (n, d) float32 unit vectors (cosine).  Raises ImportError without ``evoc``."""
    import evoc

    model = evoc.EVoC(noise_level=noise_level, base_min_cluster_size=min_cluster_size, random_state=seed)
    labels = np.asarray(model.fit_predict(np.asarray(vectors, dtype=np.float32)), dtype=np.int64)
    strength = np.nan_to_num(np.asarray(getattr(model, "membership_strengths_", np.ones(len(labels))),
                                        dtype=np.float32), nan=0.0)
    return labels, np.clip(strength, 0.0, 1.0)


def plscan_labels(points: np.ndarray, min_samples: int = 10, min_cluster_size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """PLSCAN (fast_hdbscan >= 0.3) on (n, k) points (e.g. the UMAP 5-D projection)."""
    from fast_hdbscan import PLSCAN

    model = PLSCAN(min_samples=min_samples, base_min_cluster_size=min_cluster_size, reproducible=True)
    labels = np.asarray(model.fit_predict(np.asarray(points, dtype=np.float64)), dtype=np.int64)
    strength = getattr(model, "probabilities_", None)
    strength = np.ones(len(labels), np.float32) if strength is None else np.asarray(strength, np.float32)
    strength = np.where(labels < 0, 0.0, np.nan_to_num(strength, nan=0.0)).astype(np.float32)
    return labels, np.clip(strength, 0.0, 1.0)


def leiden_labels(vectors: np.ndarray, n_neighbors: int = 15, resolution: float = 1.0, seed: int = 0,
                  metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Leiden (RBConfiguration, i.e. modularity with ``resolution``) on the UMAP fuzzy
    simplicial set of the kNN graph of (n, d) vectors.  Strength: the share of a row's
    graph weight that stays inside its community."""
    import igraph as ig
    import leidenalg
    from umap.umap_ import fuzzy_simplicial_set

    n = len(vectors)
    k = max(2, min(n_neighbors, n - 1))
    idx, dist = knn_graph(np.asarray(vectors, dtype=np.float32), k, metric, seed)
    graph, _, _ = fuzzy_simplicial_set(vectors, k, np.random.RandomState(seed), metric, knn_indices=idx,
                                       knn_dists=dist)
    coo = graph.tocoo()
    keep = coo.row < coo.col
    g = ig.Graph(n=n, edges=np.column_stack([coo.row[keep], coo.col[keep]]).tolist(), directed=False)
    g.es["weight"] = coo.data[keep].tolist()
    part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition, weights="weight",
                                    resolution_parameter=float(resolution), seed=int(seed), n_iterations=-1)
    labels = np.asarray(part.membership, dtype=np.int64)
    w = graph.tocsr()
    inside = np.asarray(w.sum(axis=1)).ravel()
    same = np.zeros(n, np.float64)
    rows = np.repeat(np.arange(n), np.diff(w.indptr))
    np.add.at(same, rows, np.where(labels[rows] == labels[w.indices], w.data, 0.0))
    strength = np.where(inside > 0, same / np.where(inside > 0, inside, 1.0), 1.0)
    return labels, np.clip(strength, 0.0, 1.0).astype(np.float32)
