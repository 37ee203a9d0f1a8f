"""Greedy k-center on cosine distance ('kcenter-greedy-cosine'): Gonzalez (1985) farthest-point
traversal, the k-center core-set of Sener & Savarese (2018), with distance ``1 - cos``.

Each step takes the open candidate least similar to every row chosen so far (pins count as
chosen); without pins the start is a seeded random candidate, so different seeds give
different (equally spread) subsets.  ``1 - cos`` orders pairs as the angle does, so the
greedy is the angular-metric farthest-point traversal: its covering radius (in angle) is at
most twice the optimum."""

from __future__ import annotations

import zlib

import numpy as np

from ...nn import unit
from .base import PickMethod, PickRequest
from .fill import PickBudget
from .views import exact_view, seed_key


def pick_kcenter_cosine(candidates: np.ndarray, k: int, rows, seeds: np.ndarray | None = None, *, seed: int = 0,
                        cluster_id: int = 0, stratum: str | None = None, cost: np.ndarray | None = None,
                        capacity: int | None = None) -> np.ndarray:
    """Greedy k-center on cosine distance.  ``candidates`` (m,) int64 positions; ``rows[positions]``
    -> (m, d) vectors; ``seeds`` (s,) int64 positions already chosen (pins), or None.  Returns
    (<= k,) int64 positions in pick order (with ``cost``/``capacity``: rows that fit the tokens
    left).  Ties go to the first candidate."""
    if k <= 0 or len(candidates) == 0:
        return candidates[:0]
    V = unit(rows[candidates]).astype(np.float64)
    b = PickBudget(len(candidates), k, cost, capacity)
    chosen: list[int] = []
    if seeds is not None and len(seeds):
        maxsim = (V @ unit(rows[np.asarray(seeds, dtype=np.int64)]).astype(np.float64).T).max(axis=1)
    else:
        key = [seed, 13, seed_key(cluster_id)] + ([zlib.crc32(stratum.encode("utf-8")) + 1] if stratum else [])
        open_idx = np.nonzero(b.open)[0]
        if len(open_idx) == 0:
            return candidates[:0]
        first = int(open_idx[np.random.default_rng(key).integers(len(open_idx))])
        chosen.append(first)
        b.take(first)
        maxsim = V @ V[first]
    while not b.done():
        nxt = int(np.argmin(np.where(b.open, maxsim, np.inf)))  # the least similar open candidate
        chosen.append(nxt)
        b.take(nxt)
        maxsim = np.maximum(maxsim, V @ V[nxt])
    return candidates[np.asarray(chosen, dtype=np.int64)]


def _kcenter(r: PickRequest) -> np.ndarray:
    return pick_kcenter_cosine(r.candidates, r.k, r.view.rows, r.seeds, seed=r.seed, cluster_id=r.cluster_id,
                               stratum=r.stratum, cost=r.cost, capacity=r.capacity)


KCENTER_COSINE = PickMethod("kcenter-greedy-cosine", "greedy k-center on cosine distance from a seeded start "
                            "(covering radius within 2x the optimum)", pick=_kcenter, view=exact_view, vectors=True)
