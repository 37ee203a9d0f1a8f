"""k-center greedy ('diverse'): farthest point first (Gonzalez 1985; the core-set of Sener &
Savarese 2018), on the whole cluster (algo_version 1) or on a seeded bounded candidate pool
(algo_version 2, fast at 1M rows)."""

from __future__ import annotations

import math

import numpy as np

from ...nn import unit
from .base import PickMethod, PickRequest
from .fill import PickBudget, pool_then_rest
from .views import DIVERSE_POOL_FACTOR, DIVERSE_POOL_MIN, pooled_view


def pick_diverse(candidates: np.ndarray, k: int, vectors, centroid: np.ndarray,
                 seeds: np.ndarray | None = None, *, cost: np.ndarray | None = None,
                 capacity: int | None = None) -> np.ndarray:
    """k-center greedy (farthest point first, Euclidean on unit vectors).  Starts from ``seeds``
    (e.g. pinned rows) or, without any, from the candidate nearest the centroid."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    v = unit(vectors[candidates])
    b = PickBudget(len(candidates), k, cost, capacity)
    chosen: list[int] = []
    if seeds is not None and len(seeds):
        s = unit(vectors[seeds])
        mind = np.full(len(candidates), np.inf, dtype=np.float32)
        for row in s:
            mind = np.minimum(mind, np.linalg.norm(v - row, axis=1))
    else:
        first = next((int(i) for i in np.lexsort((candidates, np.linalg.norm(v - centroid, axis=1)))
                      if b.open[i]), None)
        if first is None:
            return candidates[:0]
        chosen.append(first)
        b.take(first)
        mind = np.linalg.norm(v - v[first], axis=1)
    while not b.done():
        mind_masked = np.where(b.open, mind, -1.0)
        nxt = int(np.argmax(mind_masked))
        chosen.append(nxt)
        b.take(nxt)
        mind = np.minimum(mind, np.linalg.norm(v - v[nxt], axis=1))
    return candidates[np.asarray(chosen, dtype=np.int64)]


def diverse_pool_size(n: int, k: int, cost: np.ndarray | None = None, capacity: int | None = None) -> int:
    """How many candidates the fast 'diverse' pick (algo_version 2) runs on: all of them up to
    ``DIVERSE_POOL_MIN``, else ``max(DIVERSE_POOL_MIN, DIVERSE_POOL_FACTOR * k)`` (k estimated
    from the median cost for a token budget)."""
    if cost is not None and capacity is not None and len(cost):
        k = int(math.ceil(max(0, capacity) / max(1.0, float(np.median(cost))))) + 1
    return int(min(n, max(DIVERSE_POOL_MIN, DIVERSE_POOL_FACTOR * max(k, 0))))


def _pool_start(V: np.ndarray, pool_ids: np.ndarray, rows, centroid, seeds, b: PickBudget,
                chosen: list[int]) -> np.ndarray | None:
    """Each pool row's highest cosine similarity to the seeds, else to the first pick (the open
    candidate nearest ``centroid``, appended to ``chosen``); None when nothing is open."""
    if seeds is not None and len(seeds):
        S = rows[np.asarray(seeds, dtype=np.int64)]
        maxsim = np.full(len(V), -np.inf, dtype=np.float32)
        for s in range(0, len(S), 1024):
            np.maximum(maxsim, (V @ S[s : s + 1024].T).max(axis=1), out=maxsim)
        return maxsim
    d = np.linalg.norm(V - centroid, axis=1)
    first = next((int(i) for i in np.lexsort((pool_ids, d)) if b.open[i]), None)
    if first is None:
        return None
    chosen.append(first)
    b.take(first)
    return V @ V[first]


def pick_diverse_pool(candidates: np.ndarray, k: int, rows, centroid: np.ndarray, order: np.ndarray,
                      seeds: np.ndarray | None = None, *, cost: np.ndarray | None = None,
                      capacity: int | None = None, pool_size: int | None = None) -> np.ndarray:
    """k-center greedy on a bounded candidate pool (``pick='diverse'``, algo_version 2).

    The pool is the first :func:`diverse_pool_size` candidates in the seeded random
    ``order`` (a rank per candidate; all candidates when there are few).  On the pool it
    is exactly the farthest-point greedy of :func:`pick_diverse` -- starting from the
    seeds (pins), else from the candidate nearest ``centroid``; each step takes the open
    candidate whose highest cosine similarity to the rows chosen so far is lowest (for
    unit vectors: the farthest, ties to the first candidate) -- kept up to date with one
    float32 matrix-vector product per pick, so a pick costs ``pool x dim``, not
    ``cluster x dim``.  ``rows[positions]`` gives unit vectors.  If a token budget
    outlasts the pool, the other candidates follow in ``order`` while they fit."""
    n = len(candidates)
    if k <= 0 or n == 0:
        return candidates[:0]
    order = np.asarray(order)
    size = diverse_pool_size(n, k, cost, capacity) if pool_size is None else int(min(n, pool_size))
    by_rank = np.argsort(order, kind="stable")
    pool = np.arange(n) if size >= n else np.sort(by_rank[:size])
    rest = by_rank[size:] if size < n else np.zeros(0, np.int64)
    V = rows[candidates[pool]]
    pc = None if cost is None or capacity is None else np.asarray(cost, dtype=np.int64)[pool]
    b = PickBudget(len(pool), k, pc, capacity)
    chosen: list[int] = []
    maxsim = _pool_start(V, candidates[pool], rows, centroid, seeds, b, chosen)
    if maxsim is None:
        return candidates[:0]
    maxsim = np.asarray(maxsim, dtype=np.float32)
    maxsim[~b.open] = np.inf
    tmp = np.empty(len(pool), dtype=np.float32)
    if b.cost is None:  # rows: a plain loop (no per-step scan of the open set)
        dot, maximum, inf = np.dot, np.maximum, np.inf
        for _ in range(min(k, len(pool)) - len(chosen)):
            nxt = int(maxsim.argmin())  # the farthest open candidate; ties -> the first
            chosen.append(nxt)
            dot(V, V[nxt], out=tmp)
            maximum(maxsim, tmp, out=maxsim)
            maxsim[nxt] = inf
        b.taken = len(chosen)
    while b.cost is not None and not b.done():
        nxt = int(np.argmin(maxsim))
        chosen.append(nxt)
        b.take(nxt)
        np.dot(V, V[nxt], out=tmp)
        np.maximum(maxsim, tmp, out=maxsim)
        maxsim[~b.open] = np.inf
    return pool_then_rest(candidates, pool, chosen, rest, b, k, cost)


def _diverse(r: PickRequest) -> np.ndarray:
    if r.algo_version >= 2:
        return pick_diverse_pool(r.candidates, r.k, r.view.rows, r.view.centroid, r.view.pool_rank(r.candidates),
                                 seeds=r.seeds, cost=r.cost, capacity=r.capacity)
    return pick_diverse(r.candidates, r.k, r.view.rows, r.view.centroid, seeds=r.seeds, cost=r.cost,
                        capacity=r.capacity)


DIVERSE = PickMethod("diverse", "k-center greedy: each row the farthest from those chosen (the default)",
                     pick=_diverse, view=pooled_view, vectors=True)
