"""Nearest-neighbour helpers on unit vectors (cosine similarity = dot product).

Exact blocked matrix products while ``len(query) * len(base)`` stays below
``EXACT_PAIRS``; above it an approximate index (pynndescent, seeded, one thread so
the result is deterministic).  Nothing here is quadratic in the dataset: callers
pass one cluster, a subset, a sample, or a small reference set as ``base``.
"""

from __future__ import annotations

import numpy as np

EXACT_PAIRS = 60_000_000  # query x base pairs computed exactly (about a second of BLAS)
BLOCK = 2048


def unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def max_sim(query: np.ndarray, base: np.ndarray, *, seed: int = 0, exact_pairs: int = EXACT_PAIRS,
            block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: the highest cosine similarity to a base row, and that row's index.

    Rows are normalised here (block by block for the query, which may be a large
    memory-mapped array).  Exact (ties: lowest base index) when the pair count is
    small, else approximate (an index over ``base``)."""
    nq, nb = len(query), len(base)
    best = np.full(nq, -np.inf, dtype=np.float32)
    arg = np.full(nq, -1, dtype=np.int64)
    if nq == 0 or nb == 0:
        return best, arg
    base = unit(base)
    exact = nq * nb <= exact_pairs or nb < 64
    index = None if exact else _index(base, seed)
    step = block if exact else 65536
    for s in range(0, nq, step):
        q = unit(query[s : s + step])
        if exact:
            sims = q @ base.T
            a = sims.argmax(axis=1)
            best[s : s + step] = sims[np.arange(len(a)), a]
        else:
            a = index.query(q, k=1)[0][:, 0].astype(np.int64)
            best[s : s + step] = np.einsum("ij,ij->i", q, base[a])
        arg[s : s + step] = a
    return best, arg


def _index(base: np.ndarray, seed: int, n_neighbors: int = 15):
    from pynndescent import NNDescent

    return NNDescent(base, metric="cosine", n_neighbors=min(n_neighbors, len(base) - 1), random_state=seed,
                     n_jobs=1, low_memory=True, verbose=False)


def similar_pairs(vectors: np.ndarray, threshold: float, *, seed: int = 0, exact_rows: int = 30_000,
                  k: int = 12, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of (unit) rows with cosine similarity >= ``threshold``.

    Exact (blocked, upper triangle only) for up to ``exact_rows`` rows; above that the
    ``k`` approximate nearest neighbours of each row are checked, so a row with many
    near-copies may miss some direct pairs -- their union-find component still joins
    them through the others."""
    v = np.asarray(vectors, dtype=np.float32)
    n = len(v)
    if n < 2:
        z = np.zeros(0, np.int64)
        return z, z
    ii, jj = [], []
    if n <= exact_rows:
        for s in range(0, n, block):
            sims = v[s : s + block] @ v[s:].T  # only columns >= s
            r, c = np.nonzero(sims >= threshold)
            i, j = r + s, c + s
            keep = j > i
            ii.append(i[keep])
            jj.append(j[keep])
    else:
        from pynndescent import NNDescent

        index = NNDescent(v, metric="cosine", n_neighbors=min(k + 1, n - 1), random_state=seed, n_jobs=1,
                          low_memory=True, verbose=False)
        nbr, dist = index.neighbor_graph
        sims = 1.0 - dist
        rows = np.repeat(np.arange(n), nbr.shape[1])
        cols = nbr.ravel()
        ok = (cols >= 0) & (cols != rows) & (sims.ravel() >= threshold)
        i, j = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
        ii.append(i)
        jj.append(j)
    i = np.concatenate(ii).astype(np.int64)
    j = np.concatenate(jj).astype(np.int64)
    if len(i):
        pairs = np.unique(np.stack([i, j], axis=1), axis=0)  # a pair can come from both of its rows
        i, j = pairs[:, 0], pairs[:, 1]
    return i, j
