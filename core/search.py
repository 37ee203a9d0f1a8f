"""Search by meaning: the rows whose vectors are nearest (cosine) to a query's vector.

Exact brute force: a float32 matrix-vector product over the rows, in chunks, then
``np.argpartition`` for the top k.  On the 2-core development machine a query over
1M x 384 rows took well under a second (``bench/semantic_query.py``; figures in
bench/RESULTS.md), so no approximate index (FAISS, hnswlib) is needed at the sizes the
local map holds.  The query is embedded with the map's own model and backend
(:func:`embed_query`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.encoders.registry import load_encoder
from core.store.workspace import SieveError

CHUNK_ROWS = 131_072  # rows per block of the product (about 200 MB of float32 at 384 dims)


def row_norms(vectors: np.ndarray, *, chunk: int = CHUNK_ROWS) -> np.ndarray:
    """(n,) float32 L2 norms of the rows of ``vectors`` (n, d), computed in chunks (memory-mapped input is fine)."""
    n = len(vectors)
    out = np.empty(n, np.float32)
    for a in range(0, n, chunk):
        block = np.asarray(vectors[a:a + chunk], dtype=np.float32)
        out[a:a + chunk] = np.sqrt(np.einsum("ij,ij->i", block, block))
    return out


def nearest(vectors: np.ndarray, query_vec: np.ndarray, k: int, *, norms: np.ndarray | None = None,
            chunk: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``vectors`` (n, d) most similar to ``query_vec`` (d,) by cosine.

    Returns (positions (k,) int64, similarities (k,) float32), most similar first (ties by
    position).  ``norms`` are the rows' L2 norms (:func:`row_norms`); without them the rows
    are taken to be unit vectors, as Sieve's embeddings are (``EmbedParams.normalize``).
    Rows with a zero vector get similarity 0.  Raises SieveError on a bad k or shapes."""
    q = np.asarray(query_vec, dtype=np.float32).ravel()
    n = len(vectors)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise SieveError(f"k must be a positive whole number, got {k!r}")
    dim = np.asarray(vectors[:1]).shape[1] if n else len(q)
    if dim != len(q):
        raise SieveError(f"the query vector has {len(q)} dimensions, the map's vectors {dim}")
    qn = float(np.linalg.norm(q))
    if n == 0 or qn == 0 or not np.isfinite(qn):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    q = q / qn
    sims = np.empty(n, np.float32)
    for a in range(0, n, chunk):
        np.dot(np.asarray(vectors[a:a + chunk], dtype=np.float32), q, out=sims[a:a + chunk])
    if norms is not None:
        nz = np.asarray(norms, dtype=np.float32)
        np.divide(sims, nz, out=sims, where=nz > 0)
        sims[nz == 0] = 0.0
    k = min(int(k), n)
    top = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
    order = np.lexsort((top, -sims[top]))
    top = top[order].astype(np.int64)
    return top, sims[top]


def embed_query(encoder: Any, query: str) -> np.ndarray:
    """(d,) float32: ``query`` embedded with ``encoder`` (the map's model and backend)."""
    text = " ".join(str(query or "").split())
    if not text:
        raise SieveError("the search query is empty; type what you are looking for")
    return np.asarray(encoder.embed([text]), dtype=np.float32)[0]


def query_encoder(model_id: str, params) -> Any:
    """The encoder that made a map's vectors, for embedding queries: ``model_id`` is the
    map's ``MapKeys.model_id`` and ``params`` its ``EmbedParams``.

    Raises SieveError for a map built from a dataset's own vector column: no model made
    those vectors, so only "more like this" (a row's own vector) can search them."""
    if str(model_id).startswith("column:"):
        raise SieveError(f"this map's vectors come from the data ({model_id}), not from a model, so a text query "
                         "cannot be embedded; use more like this (a row's own vector) instead")
    if params is None:
        raise SieveError("this map's settings are unknown; compute the map again to search it by meaning")
    return load_encoder(params=params)
