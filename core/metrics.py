"""Metrics: how a selection compares with the full set.

None of these is quadratic in the dataset: the nearest-neighbour diversity works
on the subset (sampled to at most ``max_rows`` query rows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .cluster import NOISE


@dataclass
class SelectionMetrics:
    n_full: int
    n_subset: int
    counts_full: dict[int, int]
    counts_subset: dict[int, int]
    coverage: float  # share of (non-noise) clusters with at least one chosen row
    jsd: float  # Jensen-Shannon divergence (base 2, 0..1) of the cluster distributions
    nn_distance: float | None  # mean cosine distance to the nearest other chosen row
    nn_distance_random: float | None  # the same for random subsets of the same size

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts_full"] = {str(k): v for k, v in self.counts_full.items()}
        d["counts_subset"] = {str(k): v for k, v in self.counts_subset.items()}
        return d


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return 1.0 if p.sum() != q.sum() else 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return float(min(1.0, max(0.0, (kl(p, m) + kl(q, m)) / 2)))


def coverage(labels: np.ndarray, chosen: np.ndarray) -> float:
    groups = set(labels.tolist()) - {NOISE} or set(labels.tolist())
    hit = set(labels[chosen].tolist()) & groups
    return len(hit) / len(groups) if groups else 0.0


def mean_nn_distance(vectors: np.ndarray, idx: np.ndarray, *, max_rows: int = 4000, seed: int = 0,
                     block: int = 2048) -> float | None:
    """Mean cosine distance from each chosen row (up to ``max_rows`` sampled) to its nearest other chosen row."""
    idx = np.asarray(idx)
    if len(idx) < 2:
        return None
    rng = np.random.default_rng(seed)
    base = np.asarray(vectors[np.sort(idx)], dtype=np.float32)
    base /= np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-12)
    q_idx = np.arange(len(base))
    if len(base) > max_rows:
        q_idx = np.sort(rng.choice(len(base), max_rows, replace=False))
    best = np.empty(len(q_idx), dtype=np.float32)
    for start in range(0, len(q_idx), block):
        qi = q_idx[start : start + block]
        sims = base[qi] @ base.T
        sims[np.arange(len(qi)), qi] = -np.inf  # not itself
        best[start : start + block] = sims.max(axis=1)
    return float(np.mean(1.0 - best))


def selection_metrics(labels: np.ndarray, chosen: np.ndarray, vectors: np.ndarray | None = None, *,
                      eligible: np.ndarray | None = None, n_random: int = 5, seed: int = 0) -> SelectionMetrics:
    """``chosen``: positions into ``labels``/``vectors``.  The random baseline draws
    ``len(chosen)`` rows from ``eligible`` (default: all rows), ``n_random`` times."""
    labels = np.asarray(labels)
    chosen = np.asarray(chosen, dtype=np.int64)
    groups = sorted(set(labels.tolist()))
    full = {c: int((labels == c).sum()) for c in groups}
    sub_labels = labels[chosen]
    sub = {c: int((sub_labels == c).sum()) for c in groups}
    nn = nn_rand = None
    if vectors is not None and len(chosen) >= 2:
        nn = mean_nn_distance(vectors, chosen, seed=seed)
        pool = np.arange(len(labels)) if eligible is None else np.asarray(eligible)
        if len(pool) >= len(chosen):
            rng = np.random.default_rng(seed + 1)
            vals = [mean_nn_distance(vectors, rng.choice(pool, len(chosen), replace=False), seed=seed)
                    for _ in range(n_random)]
            nn_rand = float(np.mean(vals))
    return SelectionMetrics(
        n_full=int(len(labels)),
        n_subset=int(len(chosen)),
        counts_full=full,
        counts_subset=sub,
        coverage=coverage(labels, chosen),
        jsd=jensen_shannon(np.array([full[c] for c in groups]), np.array([sub[c] for c in groups])),
        nn_distance=nn,
        nn_distance_random=nn_rand,
    )
