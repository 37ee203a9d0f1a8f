"""Facility location inside a cluster ('facility') and over all clusters at once
('facility-global'): the greedy of Nemhauser, Wolsey & Fisher (1978).

``algo_version`` 1 and 2: :func:`pick_facility`, lazy evaluation (Minoux 1978) with the
stale gains refreshed by matrix products.  ``algo_version`` 3: :func:`pick_facility_block`,
the exact greedy on a client x candidate similarity block computed once
(:mod:`core.selection.facility_block`), with bounded client and candidate samples.
"""

from __future__ import annotations

import heapq
import math
import zlib

import numpy as np

from ...nn import unit
from ..facility_block import greedy_block, similarity_block
from ..facility_global import pick_facility_global
from .base import ClusterView, PickMethod, PickRequest
from .fill import PickBudget, pool_then_rest
from .views import exact_view, seed_key

FACILITY_MAX_CLIENTS = 1000  # rows of a cluster that the facility objective is evaluated on
FACILITY_MAX_CANDIDATES = 10_000  # candidates evaluated per cluster (a deterministic sample beyond)
# algo_version 3: clients per cluster (a seeded sample beyond) -- at least ..._MIN and ..._FACTOR per row to
# pick; candidates likewise.  Chosen by measurement (bench.interactive's 100k-row map; docs/SELECTION.md).
FACILITY_CLIENTS_MIN = 256
FACILITY_CLIENTS_FACTOR = 4
FACILITY_POOL_MIN = 1024
FACILITY_POOL_FACTOR = 8


def _k_hint(n: int, k: int, cost, capacity) -> int:
    """Rows to pick: ``k``, or for a token budget the capacity over the median cost (+1, at most n)."""
    if cost is None or capacity is None:
        return k
    return min(n, int(math.ceil(capacity / max(1.0, float(np.median(cost))))) + 1)


def _candidate_pool(n: int, k: int, rng, cost, capacity, max_candidates: int, pool_min: int = 0,
                    pool_factor: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(pool, rest) indices into the candidates: all of them, or a seeded sample of
    ``max(max_candidates, pool_min, pool_factor * k)`` (k estimated from the median cost
    for a token budget)."""
    size = max(max_candidates, pool_min, pool_factor * _k_hint(n, k, cost, capacity))
    if n > size:
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


def pick_facility_block(candidates: np.ndarray, k: int, rows, clients: np.ndarray, seeds: np.ndarray | None = None,
                        *, seed: int = 0, cluster_id: int = 0, cost: np.ndarray | None = None,
                        capacity: int | None = None, clients_min: int = FACILITY_CLIENTS_MIN,
                        clients_factor: int = FACILITY_CLIENTS_FACTOR, pool_min: int = FACILITY_POOL_MIN,
                        pool_factor: int = FACILITY_POOL_FACTOR) -> np.ndarray:
    """Greedy facility location (algo_version 3): the objective of :func:`pick_facility`,
    maximised by the exact greedy on a client x candidate similarity block computed once
    (:mod:`core.selection.facility_block`: O(clients x candidates) work per pick at most,
    no matrix product after the first).

    ``rows[positions]`` -> (m, d) float32 unit vectors (the cluster view's rows).  Clients:
    the cluster's rows, or a seeded sample of ``max(clients_min, clients_factor * k)``.
    Candidates: all of them, or a seeded sample of ``max(pool_min, pool_factor * k)`` (k
    estimated from the median cost for a token budget); rows outside it follow in seeded
    order if the sample runs out.  Token budgets: a row that would overshoot is skipped.
    ``candidates``/``clients``/``seeds``: int64 positions; returns (<= k,) int64 positions
    in pick order."""
    n = len(candidates)
    if k <= 0 or n == 0:
        return candidates[:0]
    rng = np.random.default_rng([seed, 17, seed_key(cluster_id)])
    pool, rest = _candidate_pool(n, k, rng, cost, capacity, 0, pool_min, pool_factor)
    clients = np.sort(np.asarray(clients, dtype=np.int64))
    m = max(clients_min, clients_factor * _k_hint(n, k, cost, capacity))
    if len(clients) > m:
        clients = np.sort(rng.choice(clients, m, replace=False))
    X = rows[clients]
    pos = candidates[pool]
    same = bool(np.array_equal(pos, clients))
    ST = similarity_block(same, X if same else rows[pos], X)
    cur = np.zeros(len(X), dtype=np.float32)
    if seeds is not None and len(seeds):
        cur = np.maximum((X @ rows[np.asarray(seeds, dtype=np.int64)].T).max(axis=1), 0.0).astype(np.float32)
    pc = None if cost is None or capacity is None else np.asarray(cost)[pool]
    b = PickBudget(len(pool), k, pc, capacity)
    chosen = greedy_block(ST, cur, lambda: b.open, b.take, b.done, closes_others=pc is not None)
    return pool_then_rest(candidates, pool, chosen, rest, b, k, cost)


def _facility(r: PickRequest) -> np.ndarray:
    cid = r.cluster_id if r.stratum is None else r.cluster_id * 7919 + zlib.crc32(r.stratum.encode("utf-8")) % 7919
    if r.algo_version >= 3:
        return pick_facility_block(r.candidates, r.k, r.view.rows, r.members, seeds=r.seeds, seed=r.seed,
                                   cluster_id=cid, cost=r.cost, capacity=r.capacity)
    return pick_facility(r.candidates, r.k, r.view.rows, r.members, seeds=r.seeds, seed=r.seed, cluster_id=cid,
                         cost=r.cost, capacity=r.capacity)


class UnitRows:
    """``rows[positions]`` -> (m, d) float32 unit vectors of those map positions, read when asked."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    def __getitem__(self, idx) -> np.ndarray:
        return unit(np.take(self.vectors, np.asarray(idx, dtype=np.int64), axis=0))


def facility_view(vectors: np.ndarray, members: np.ndarray, seed: int, cluster_id: int,
                  algo_version: int) -> ClusterView:
    """algo_version >= 3: :class:`UnitRows` (a big cluster reads only its clients, candidate
    pool and pins; the facility pick reads each once); 1 and 2: :func:`exact_view`."""
    if algo_version < 3:
        return exact_view(vectors, members, seed, cluster_id, algo_version)
    return ClusterView(rows=UnitRows(vectors))


FACILITY = PickMethod("facility", "facility location (greedy): rows that best represent their cluster",
                      pick=_facility, view=facility_view, vectors=True)
FACILITY_GLOBAL = PickMethod("facility-global", "facility location over all clusters at once, per-cluster counts "
                             "kept (row budgets, no strata)", joint=pick_facility_global, vectors=True,
                             engines=("local",), fallback="facility")
