"""How a cluster's vectors are prepared for the vector picks (see :class:`~.base.ClusterView`).

:func:`exact_view`: every member's unit vector and their mean.  :func:`pooled_view`
(pick='diverse', algo_version 2): unit vectors gathered on first use only, a seeded rank
per member and the centre of a bounded sample, so a 1M-row cluster reads only its centre
sample, its candidate pool and its pins.
"""

from __future__ import annotations

import numpy as np

from ...nn import unit
from .base import ClusterView

DIVERSE_POOL_MIN = 1024  # algo_version 2: candidates per cluster (or strata cell) 'diverse' runs on, at least ...
DIVERSE_POOL_FACTOR = 8  # ... and at least this many per row to pick (all candidates when fewer)


def seed_key(cluster_id: int) -> int:
    """The cluster's part of a seeded generator's key (noise, -1, gets its own large key)."""
    return cluster_id + 1 if cluster_id >= 0 else 10**9


class ClusterRows:
    """One cluster's unit vectors, indexed by map position (so pickers see the same
    numbers as from a normalised copy of the whole matrix, without making one)."""

    def __init__(self, vectors: np.ndarray, members: np.ndarray):
        self.pos = np.sort(np.asarray(members, dtype=np.int64))
        self.unit = unit(vectors[self.pos])

    def __getitem__(self, idx) -> np.ndarray:
        return self.unit[np.searchsorted(self.pos, np.asarray(idx, dtype=np.int64))]


class RowCache:
    """Unit vectors of map positions, gathered (and normalised) on first use only, so a
    cluster's centre sample and its candidate pools read each row once."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors
        self.pos = np.zeros(0, np.int64)
        self.unit = np.zeros((0, vectors.shape[1]), np.float32)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        loc = np.searchsorted(self.pos, idx)
        found = loc < len(self.pos)
        found[found] = self.pos[loc[found]] == idx[found]
        if not found.all():
            missing = idx[~found]
            if len(missing) > 1 and not (missing[1:] > missing[:-1]).all():
                missing = np.unique(missing)
            new = unit(np.take(self.vectors, missing, axis=0))
            pos = np.concatenate([self.pos, missing])
            order = np.argsort(pos, kind="stable")
            self.pos = pos[order]
            self.unit = np.concatenate([self.unit, new])[order] if len(self.unit) else new
            loc = np.searchsorted(self.pos, idx)
        return self.unit[loc]


def pool_order(members: np.ndarray, seed: int, cluster_id: int) -> np.ndarray:
    """A seeded random rank per member (aligned with ``members``), (c,) int."""
    rng = np.random.default_rng([seed, 11, seed_key(cluster_id)])
    return rng.permutation(len(members))


def rank_lookup(members: np.ndarray, rank: np.ndarray):
    """A function: positions (members of the cluster) -> their ranks."""
    by_pos = np.argsort(members, kind="stable")
    sorted_members = members[by_pos]
    return lambda positions: rank[by_pos[np.searchsorted(sorted_members, positions)]]


def unit_mean(v: np.ndarray) -> np.ndarray:
    """The mean of (m, d) rows scaled to unit length (a zero mean stays zero)."""
    c = v.mean(axis=0)
    norm = np.linalg.norm(c)
    return c / (norm if norm > 0 else 1)


def sample_centroid(rows, members: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Unit mean of the members' unit vectors -- of the ``DIVERSE_POOL_MIN`` lowest-ranked
    members for a bigger cluster (summed in ``members`` order)."""
    sample = members if len(members) <= DIVERSE_POOL_MIN else members[np.sort(np.argsort(rank)[:DIVERSE_POOL_MIN])]
    return unit_mean(rows[sample])


def exact_view(vectors: np.ndarray, members: np.ndarray, seed: int, cluster_id: int,
               algo_version: int) -> ClusterView:
    """Every member's unit vector; the centroid is their unit mean (members in row-id order)."""
    rows = ClusterRows(vectors, members)
    return ClusterView(rows=rows, centroid=unit_mean(rows[members]))


def pooled_view(vectors: np.ndarray, members: np.ndarray, seed: int, cluster_id: int,
                algo_version: int) -> ClusterView:
    """algo_version >= 2: rows read on first use, a seeded rank per member, a sampled centre;
    algo_version 1: :func:`exact_view`."""
    if algo_version < 2:
        return exact_view(vectors, members, seed, cluster_id, algo_version)
    rows = RowCache(vectors)
    rank = pool_order(members, seed, cluster_id)
    return ClusterView(rows=rows, centroid=sample_centroid(rows, members, rank), pool_rank=rank_lookup(members, rank))
