"""Facility location inside a cluster ('facility') and over all clusters at once
('facility-global'): greedy with lazy evaluation (Nemhauser, Wolsey & Fisher 1978;
lazy greedy: Minoux 1978)."""

from __future__ import annotations

import heapq
import math
import zlib

import numpy as np

from ...nn import unit
from ..facility_global import pick_facility_global
from .base import PickMethod, PickRequest
from .fill import PickBudget, pool_then_rest
from .views import exact_view, seed_key

FACILITY_MAX_CLIENTS = 1000  # rows of a cluster that the facility objective is evaluated on
FACILITY_MAX_CANDIDATES = 10_000  # candidates evaluated per cluster (a deterministic sample beyond)


def _candidate_pool(n: int, k: int, rng, cost, capacity, max_candidates: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, rest) indices into the candidates: all of them, or a seeded sample of
    ``max(max_candidates, 2k)`` (k estimated from the median cost for a token budget)."""
    k_hint = k
    if cost is not None and capacity is not None:
        med = max(1.0, float(np.median(cost)))
        k_hint = min(n, int(math.ceil(capacity / med)) + 1)
    if n > max(max_candidates, 2 * k_hint):
        size = max(max_candidates, 2 * k_hint)
        perm = rng.permutation(n)
        return np.sort(perm[:size]), perm[size:]
    return np.arange(n), np.zeros(0, np.int64)


def _lazy_greedy(X: np.ndarray, C: np.ndarray, cur: np.ndarray, gains: np.ndarray, b: PickBudget,
                 batch_size: int) -> list[int]:
    """Indices into ``C`` (candidates' unit vectors) in greedy order, ``X`` the clients, ``cur``
    their coverage so far, ``gains`` stale (upper-bound) gains per candidate."""
    heap = [(-float(g), int(i)) for i, g in enumerate(gains)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and not b.done():
        # Refresh the top `batch` stale bounds in one matrix product (BLAS reuses the clients).
        batch: list[int] = []
        while heap and len(batch) < batch_size:
            _, i = heapq.heappop(heap)
            if b.open[i]:
                batch.append(i)
        if not batch:
            break
        sims = np.maximum(X @ C[batch].T, 0.0)  # (clients, batch)
        g = np.maximum(sims - cur[:, None], 0.0).sum(axis=0, dtype=np.float64)
        best = min(range(len(batch)), key=lambda j: (-g[j], batch[j]))
        bound = -heap[0][0] if heap else -np.inf
        if g[best] >= bound - 1e-9:  # beats every other (stale, so optimistic) bound: the true best
            i = batch[best]
            chosen.append(i)
            b.take(i)
            cur = np.maximum(cur, sims[:, best])
        else:
            best = -1
        for j, i in enumerate(batch):  # refreshed gains stay upper bounds: cur only grows
            if j != best:
                heapq.heappush(heap, (-float(g[j]), i))
    return chosen


def pick_facility(candidates: np.ndarray, k: int, vectors, clients: np.ndarray,
                  seeds: np.ndarray | None = None, *, seed: int = 0, cluster_id: int = 0,
                  cost: np.ndarray | None = None, capacity: int | None = None,
                  max_clients: int = FACILITY_MAX_CLIENTS, max_candidates: int = FACILITY_MAX_CANDIDATES,
                  block: int = 1024, batch_size: int = 32) -> np.ndarray:
    """Greedy facility location with lazy evaluation (a priority queue of stale gains).

    Maximises ``sum_j max(0, max_{i in S} cos(x_j, x_i))`` over the clients ``j`` (the
    cluster's rows; a deterministic sample of ``max_clients`` for big clusters) by
    adding, each step, the candidate with the largest gain.  Gains only shrink as S
    grows (submodularity), so a popped candidate whose refreshed gain still beats the
    next stale bound is the true best.  Big clusters evaluate a deterministic sample of
    ``max(max_candidates, 2k)`` candidates; rows outside it follow in random order if
    the sample runs out.  ``candidates``/``clients``/``seeds``: int64 positions into
    ``vectors`` (n, d); returns (<= k,) int64 positions in pick order."""
    n = len(candidates)
    if k <= 0 or n == 0:
        return candidates[:0]
    rng = np.random.default_rng([seed, 7, seed_key(cluster_id)])
    clients = np.asarray(clients, dtype=np.int64)
    if len(clients) > max_clients:
        clients = np.sort(rng.choice(clients, max_clients, replace=False))
    X = unit(vectors[clients])
    pool, rest = _candidate_pool(n, k, rng, cost, capacity, max_candidates)
    C = unit(vectors[candidates[pool]])
    cur = np.zeros(len(X), dtype=np.float32)
    if seeds is not None and len(seeds):
        cur = np.maximum(cur, (X @ unit(vectors[seeds]).T).max(axis=1))
    gains = np.empty(len(pool), dtype=np.float64)
    for s in range(0, len(pool), block):
        sims = np.maximum(C[s : s + block] @ X.T, 0.0)
        gains[s : s + block] = np.maximum(sims - cur, 0.0).sum(axis=1, dtype=np.float64)
    pc = None if cost is None or capacity is None else np.asarray(cost)[pool]
    b = PickBudget(len(pool), k, pc, capacity)
    chosen = _lazy_greedy(X, C, cur, gains, b, batch_size)
    return pool_then_rest(candidates, pool, chosen, rest, b, k, cost)


def _facility(r: PickRequest) -> np.ndarray:
    cid = r.cluster_id if r.stratum is None else r.cluster_id * 7919 + zlib.crc32(r.stratum.encode("utf-8")) % 7919
    return pick_facility(r.candidates, r.k, r.view.rows, r.members, seeds=r.seeds, seed=r.seed, cluster_id=cid,
                         cost=r.cost, capacity=r.capacity)


FACILITY = PickMethod("facility", "facility location (lazy greedy): rows that best represent their cluster",
                      pick=_facility, view=exact_view, vectors=True)
FACILITY_GLOBAL = PickMethod("facility-global", "facility location over all clusters at once, per-cluster counts "
                             "kept (row budgets, no strata)", joint=pick_facility_global, vectors=True,
                             engines=("local",), fallback="facility")
