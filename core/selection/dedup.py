"""Duplicate groups: rows with the same normalised text (exact) or, inside one
cluster, embeddings with cosine similarity >= a threshold (near), joined by
union-find (connected components), so a budget never pays twice for one content.

Pure parts: :func:`normalize_text`, :func:`text_keys`, :func:`find_groups`.
The selection picks one representative per group (see core.selection).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Sequence

import numpy as np

from ..nn import similar_pairs, unit

_SPACE = re.compile(r"\s+")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)


def normalize_text(text: str | None) -> str:
    """Unicode NFKC, lower case, whitespace collapsed, punctuation and symbols stripped at both ends."""
    if text is None:
        return ""
    t = unicodedata.normalize("NFKC", str(text)).lower()
    t = _SPACE.sub(" ", t).strip()
    return _EDGE.sub("", t)


def text_key(text: str | None) -> int:
    """64-bit hash of the normalised text (as a signed int64)."""
    d = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(d, "little", signed=True)


def text_keys(texts: Sequence[str | None]) -> np.ndarray:
    return np.fromiter((text_key(t) for t in texts), dtype=np.int64, count=len(texts))


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Union-find over ``n`` items joined by the pairs (i, j): a component id per item.

    Component ids are the smallest item index in the component (deterministic)."""
    if len(i) == 0:
        return np.arange(n, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(i), np.int8), (np.asarray(i), np.asarray(j))), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    first = np.full(comp.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


def exact_pairs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs joining every row to the first row with the same key."""
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = np.r_[True, k[1:] != k[:-1]]
    head = order[np.maximum.accumulate(np.where(starts, np.arange(len(k)), 0))]
    dup = ~starts
    return head[dup].astype(np.int64), order[dup].astype(np.int64)


def find_groups(labels: np.ndarray, *, keys: np.ndarray | None = None, vectors: np.ndarray | None = None,
                near: bool = False, threshold: float = 0.95, seed: int = 0) -> np.ndarray:
    """A group id per row (the smallest position in its group).

    ``keys``: normalised-text hashes (exact duplicates, across the whole set).
    ``near``: also join rows of the same cluster (``labels``) whose unit vectors have
    cosine similarity >= ``threshold``; searched cluster by cluster (exact for small
    clusters, approximate nearest neighbours for large ones), never over all pairs."""
    labels = np.asarray(labels)
    n = len(labels)
    ii, jj = [], []
    if keys is not None:
        a, b = exact_pairs(keys)
        ii.append(a)
        jj.append(b)
    if near:
        if vectors is None:
            raise ValueError("near-duplicate groups need the vectors")
        for c in np.unique(labels):
            members = np.nonzero(labels == c)[0]
            if len(members) < 2:
                continue
            a, b = similar_pairs(unit(vectors[members]), threshold, seed=seed)
            ii.append(members[a])
            jj.append(members[b])
    i = np.concatenate(ii) if ii else np.zeros(0, np.int64)
    j = np.concatenate(jj) if jj else np.zeros(0, np.int64)
    return components(n, i, j)
