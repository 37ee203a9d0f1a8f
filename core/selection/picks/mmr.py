"""Maximal marginal relevance (Carbonell & Goldstein 1998) inside a cluster."""

from __future__ import annotations

import numpy as np

from ...nn import unit
from .base import PickMethod, PickRequest
from .fill import PickBudget
from .views import exact_view


def relevance(scores: np.ndarray, ascending: bool) -> np.ndarray:
    """(m,) float64 scores scaled to [0, 1] (1 = most relevant); missing (NaN) scores 0."""
    s = np.asarray(scores, dtype=np.float64)
    ok = ~np.isnan(s)
    out = np.zeros(len(s))
    if ok.any():
        lo, hi = s[ok].min(), s[ok].max()
        r = (s[ok] - lo) / (hi - lo) if hi > lo else np.ones(int(ok.sum()))
        out[ok] = 1.0 - r if ascending else r
    return out


def pick_mmr(candidates: np.ndarray, k: int, vectors, centroid: np.ndarray, lam: float,
             relevance: np.ndarray | None = None, seeds: np.ndarray | None = None, *,
             cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Maximal marginal relevance: repeatedly the candidate maximising
    ``lam * relevance - (1 - lam) * max(0, max cosine similarity to the rows chosen so far)``.

    ``relevance`` (aligned with ``candidates``, in [0, 1]) defaults to the cosine
    similarity to the cluster centre.  ``lam=1``: top relevance; small ``lam``: spread out.
    Ties go to the first candidate.  ``seeds`` (pins) count as chosen."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    v = unit(vectors[candidates])
    rel = (v @ centroid).astype(np.float64) if relevance is None else np.asarray(relevance, dtype=np.float64)
    b = PickBudget(len(candidates), k, cost, capacity)
    maxsim = np.zeros(len(candidates), dtype=np.float64)
    if seeds is not None and len(seeds):
        maxsim = np.maximum(maxsim, (v @ unit(vectors[seeds]).T).max(axis=1))
    chosen: list[int] = []
    while not b.done():
        score = np.where(b.open, lam * rel - (1.0 - lam) * maxsim, -np.inf)
        nxt = int(np.argmax(score))  # ties -> the first candidate
        chosen.append(nxt)
        b.take(nxt)
        maxsim = np.maximum(maxsim, v @ v[nxt])
    return candidates[np.asarray(chosen, dtype=np.int64)]


def _mmr(r: PickRequest) -> np.ndarray:
    rel = relevance(r.scores[r.candidates], r.score_ascending) if r.score_column else None
    return pick_mmr(r.candidates, r.k, r.view.rows, r.view.centroid, r.mmr_lambda, rel, seeds=r.seeds,
                    cost=r.cost, capacity=r.capacity)


MMR = PickMethod("mmr", "maximal marginal relevance: relevance (score_column, else the centre) vs novelty",
                 pick=_mmr, view=exact_view, vectors=True, scores="optional")
