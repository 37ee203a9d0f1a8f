"""Distinct rows of a vector array: which rows repeat another row's vector exactly.

Used by the projection (too few distinct vectors are projected with PCA) and by the
clustering (identical vectors are clustered as one point with its multiplicity).
"""

from __future__ import annotations

import numpy as np


def duplicate_groups(vectors: np.ndarray, chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) int64 of the distinct rows of ``vectors`` (n, d): ``first[g]`` is the
    first row of group ``g`` and ``inverse[i]`` the group of row ``i`` (groups in order of
    first appearance).  Rows are grouped by a 64-bit hash of their bytes, then checked
    equal to their group's first row (a hash collision falls back to ``np.unique``)."""
    v = np.ascontiguousarray(vectors)
    n = len(v)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    words = v.reshape(n, -1).view(np.uint8)
    pad = (-words.shape[1]) % 4
    weights = np.random.default_rng(0x5EED).integers(1, 2**63, size=(words.shape[1] + pad) // 4, dtype=np.uint64)
    h = np.empty(n, np.uint64)
    for s in range(0, n, chunk):
        block = words[s : s + chunk]
        if pad:
            block = np.pad(block, ((0, 0), (0, pad)))
        h[s : s + chunk] = (np.ascontiguousarray(block).view(np.uint32).astype(np.uint64) * weights).sum(axis=1)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    same = all(np.array_equal(words[s : s + chunk], words[first[inverse[s : s + chunk]]]) for s in range(0, n, chunk))
    if not same:  # pragma: no cover - a 64-bit collision
        _, first, inverse = np.unique(words.view(np.dtype((np.void, words.shape[1]))).ravel(), return_index=True,
                                      return_inverse=True)
    order = np.argsort(first, kind="stable")  # number groups by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)
