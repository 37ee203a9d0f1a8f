"""Facility location on a precomputed similarity block (``algo_version`` 3).

Greedy facility location (Nemhauser, Wolsey & Fisher 1978) maximises
``F(S) = sum_j max(0, max_{i in S} cos(x_j, x_i))`` over the clients ``j``.  The
version-2 lazy greedy (Minoux 1978) re-derived each stale gain it refreshed with a
matrix product over the clients (``clients x d`` work per refresh, about 50 refreshes
per pick on the bench's clusters).  Here the client x candidate cosine similarities are
computed **once**, as one float32 block clipped at 0 (``X @ X.T`` -- a symmetric BLAS
product, half the work -- when the candidates are the clients themselves), and every
candidate's gain is kept exact: a pick raises the coverage ``cur`` of some clients ``D``
(from ``old`` to ``new``), and each candidate's gain drops by
``sum_{j in D} clip(S[j, c], old_j, new_j) - old_j`` -- O(|D| x candidates) elementwise
work and no matrix product.  So it picks what the exact greedy picks (up to float
rounding; ties go to the lowest candidate index).
"""

from __future__ import annotations

import numpy as np

UPDATE_CHUNK = 1 << 22  # block elements updated per step (bounds the temporary copy to 16 MB)


def similarity_block(same: bool, pool_rows: np.ndarray, client_rows: np.ndarray) -> np.ndarray:
    """(m, p) float32 ``max(0, cos)`` between the clients' (m, d) and the pool's (p, d) unit
    vectors; ``same``: the pool is the clients (one symmetric product, half the work)."""
    X = client_rows
    ST = X @ X.T if same else X @ pool_rows.T
    np.maximum(ST, 0.0, out=ST)
    return ST


def greedy_block(ST: np.ndarray, cur: np.ndarray, is_open, take, done, *, closes_others: bool = False
                 ) -> list[int]:
    """Candidate (column) indices of ``ST`` (m, p) in greedy order.

    ``cur`` (m,) float32: the clients' coverage so far (pins' similarities), updated in place.
    ``take(i)`` records a pick; ``done()`` -> True when no more are wanted.  With
    ``closes_others`` a pick may close other candidates too (a token capacity, a cluster's
    quota): ``is_open()`` -> (p,) bool then says which are still allowed."""
    step = max(1, UPDATE_CHUNK // max(1, ST.shape[1]))
    if cur.any():
        gains = np.zeros(ST.shape[1], np.float64)
        for a in range(0, len(cur), step):
            gains += np.maximum(ST[a : a + step] - cur[a : a + step, None], 0.0).sum(axis=0, dtype=np.float64)
    else:
        gains = ST.sum(axis=0, dtype=np.float64)
    chosen: list[int] = []
    while len(gains) and not done():
        if closes_others:
            gains[~is_open()] = -np.inf
        i = int(np.argmax(gains))
        if gains[i] == -np.inf:
            break
        chosen.append(i)
        take(i)
        gains[i] = -np.inf
        s = ST[:, i]
        raised = np.flatnonzero(s > cur)
        for a in range(0, len(raised), step):
            _lower_gains(ST, cur, s, raised[a : a + step], gains)
    return chosen


def _lower_gains(ST: np.ndarray, cur: np.ndarray, s: np.ndarray, raised: np.ndarray, gains: np.ndarray) -> None:
    """Clients ``raised`` get coverage ``s[raised]``: every candidate's gain drops by
    ``sum clip(ST[raised, c], old, new) - old`` (in place, as ``cur``)."""
    old, new = cur[raised], s[raised]
    part = np.take(ST, raised, axis=0)
    np.maximum(part, old[:, None], out=part)  # clip(S, old, new): two SIMD passes beat np.clip's one
    np.minimum(part, new[:, None], out=part)
    gains -= np.add.reduce(part, axis=0, dtype=np.float64) - old.sum(dtype=np.float64)  # float64: no drift
    cur[raised] = new
