"""Selection across the whole set: global facility location and target-set cluster weights.

* :func:`pick_facility_global`: greedy facility location (lazy evaluation) over *all*
  clusters at once, ``max sum_j max(0, max_{i in S} cos(x_j, x_i))`` with the clients a
  seeded sample of every eligible row, under a partition-matroid constraint: cluster ``c``
  gets at most its allocated ``counts[c]`` rows (the budget split still decides how many
  per cluster; the global objective decides which, so a row that also covers neighbouring
  clusters is preferred).  Greedy under a matroid is a 1/2-approximation (Fisher,
  Nemhauser & Wolsey 1978).  ``algo_version`` 3 runs the same greedy on a client x
  candidate similarity block computed once (:mod:`core.selection.facility_block`).
* :func:`target_cluster_weights`: importance resampling at cluster level toward a target
  (reference) set, as in data selection by importance resampling (DSIR, Xie et al. 2023)
  with the map's clusters as the features: each target row is assigned to the cluster of
  its nearest map row, and a cluster's weight is its share of the target rows.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping

import numpy as np

from ..nn import unit
from .facility_block import greedy_block, similarity_block

GLOBAL_MAX_CLIENTS = 2000  # rows the global objective is evaluated on (a seeded sample)
GLOBAL_MAX_CANDIDATES = 20_000  # candidates in all (a seeded per-cluster sample beyond)


def candidate_pool(cands: Mapping[int, np.ndarray], counts: Mapping[int, int], rng,
                   max_candidates: int = GLOBAL_MAX_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """(positions, cluster of each), int64, of the candidates a joint pick evaluates: every
    candidate of the clusters with a budget ``counts[c] > 0``, or, above ``max_candidates`` in
    all, a seeded sample of max(4 x budget, share of the cap) per cluster.  Used by
    ``facility-global`` and ``facility-balanced`` (:mod:`core.selection.coverage`)."""
    live = [c for c in sorted(cands) if counts.get(c, 0) > 0 and len(cands[c])]
    total = sum(len(cands[c]) for c in live)
    pos, owner = [], []
    for c in live:
        p = np.asarray(cands[c], dtype=np.int64)
        if total > max_candidates:
            m = max(4 * int(counts[c]), int(max_candidates * len(p) / total))
            if len(p) > m:
                p = np.sort(rng.choice(p, m, replace=False))
        pos.append(p)
        owner.append(np.full(len(p), c, np.int64))
    if not pos:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pos), np.concatenate(owner)


def _greedy_on_block(X: np.ndarray, C: np.ndarray, cur: np.ndarray, pos: np.ndarray, owner: np.ndarray,
                     left: dict[int, int], out: dict[int, list[int]]) -> None:
    """algo_version 3: the partition-matroid greedy on the (clients x candidates) block;
    a cluster's candidates close when its quota ``left[c]`` is used up."""
    is_open = np.array([left[int(c)] > 0 for c in owner], dtype=bool)

    def take(i: int) -> None:
        c = int(owner[i])
        out[c].append(int(pos[i]))
        left[c] -= 1
        is_open[i] = False
        if left[c] <= 0:
            is_open[owner == c] = False

    greedy_block(similarity_block(False, C, X), cur, lambda: is_open, take, lambda: not is_open.any(),
                 closes_others=True)


def pick_facility_global(cands: Mapping[int, np.ndarray], counts: Mapping[int, int], vectors: np.ndarray,
                         clients: np.ndarray, seeds: np.ndarray | None = None, *, seed: int = 0,
                         batch_size: int = 32, algo_version: int = 2) -> dict[int, np.ndarray]:
    """Per cluster, the chosen candidate positions in pick order (at most ``counts[c]``).

    ``cands``: cluster -> candidate positions (into ``vectors``, (n, d)); ``clients``:
    eligible positions the objective covers (a seeded sample of GLOBAL_MAX_CLIENTS);
    ``seeds``: positions already chosen (pins).  A cluster whose candidates run out
    short of its count keeps fewer rows (the caller tops up).  ``algo_version`` < 3: lazy
    greedy with matrix-product refreshes; 3: the exact greedy on a precomputed block (the
    same clients and candidates; the same picks up to float rounding and ties)."""
    rng = np.random.default_rng([seed, 11])
    clients = np.asarray(clients, dtype=np.int64)
    if len(clients) > GLOBAL_MAX_CLIENTS:
        clients = np.sort(rng.choice(clients, GLOBAL_MAX_CLIENTS, replace=False))
    pos, owner = candidate_pool(cands, counts, rng)
    out: dict[int, list[int]] = {c: [] for c in cands}
    if len(pos) == 0 or len(clients) == 0:
        return {c: np.zeros(0, np.int64) for c in cands}
    X = unit(np.asarray(vectors[clients], dtype=np.float32))
    C = unit(np.asarray(vectors[pos], dtype=np.float32))
    cur = np.zeros(len(X), np.float32)
    if seeds is not None and len(seeds):
        cur = np.maximum(cur, np.maximum((X @ unit(np.asarray(vectors[seeds], np.float32)).T).max(axis=1), 0))
    left = {c: int(counts.get(c, 0)) for c in cands}
    if algo_version >= 3:
        _greedy_on_block(X, C, cur.astype(np.float32), pos, owner, left, out)
        return {c: np.asarray(v, dtype=np.int64) for c, v in out.items()}
    gains = np.maximum(np.maximum(C @ X.T, 0.0) - cur, 0.0).sum(axis=1, dtype=np.float64)
    for i in lazy_greedy(X, C, owner, cur, left, gains, lambda d: d.sum(axis=0, dtype=np.float64),
                         tol=1e-9, batch_size=batch_size):
        out[int(owner[i])].append(int(pos[i]))
    return {c: np.asarray(v, dtype=np.int64) for c, v in out.items()}


def lazy_greedy(X: np.ndarray, C: np.ndarray, owner: np.ndarray, cur: np.ndarray, left: dict[int, int],
                gains: np.ndarray, refresh: Callable[[np.ndarray], np.ndarray], *, tol: float,
                batch_size: int = 32) -> list[int]:
    """Lazy greedy (Minoux 1978) for facility location under a partition matroid: indices into
    ``C`` ((m, d) float32 unit candidates) in pick order.

    ``X`` (q, d) float32 unit clients; ``owner`` (m,) int64: each candidate's cluster; ``cur``
    (q,) float32: each client's coverage so far (pins); ``left``: rows each cluster may still
    take (updated in place); ``gains`` (m,) float64: the first gains (upper bounds later);
    ``refresh(d)``: the gains of a batch from ``d`` = max(0, sim - cur), (q, b) float32, as
    (b,) float64 (a plain or weighted sum over the clients).  Up to ``batch_size`` stale
    candidates are refreshed at once; a refreshed best within ``tol`` of the heap's top bound
    is taken (stale bounds only overestimate); ties go to the lower index.  Used by
    ``facility-global`` (``algo_version`` < 3) and ``facility-balanced`` (core.selection.coverage)."""
    heap = [(-float(g), int(i)) for i, g in enumerate(gains)]
    heapq.heapify(heap)
    chosen: list[int] = []
    while heap and any(v > 0 for v in left.values()):
        batch = []
        while heap and len(batch) < batch_size:
            _, i = heapq.heappop(heap)
            if left.get(int(owner[i]), 0) > 0:
                batch.append(i)
        if not batch:
            break
        sims = np.maximum(X @ C[batch].T, 0.0)
        g = refresh(np.maximum(sims - cur[:, None], 0.0))
        best = min(range(len(batch)), key=lambda j: (-g[j], batch[j]))
        bound = -heap[0][0] if heap else -np.inf
        if g[best] >= bound - tol:
            chosen.append(batch[best])
            left[int(owner[batch[best]])] -= 1
            cur = np.maximum(cur, sims[:, best])
        else:
            best = -1
        for j, i in enumerate(batch):
            if j != best:
                heapq.heappush(heap, (-float(g[j]), i))
    return chosen


def target_cluster_weights(target_clusters: np.ndarray, clusters: list[int]) -> dict[int, float]:
    """Cluster -> number of target rows assigned to it (0 for clusters no target row is
    nearest to); ``target_clusters`` (t,) int: the cluster of each target row's nearest map row."""
    ids, cnt = np.unique(np.asarray(target_clusters, dtype=np.int64), return_counts=True)
    got = {int(i): float(c) for i, c in zip(ids, cnt)}
    return {c: got.get(c, 0.0) for c in clusters}
