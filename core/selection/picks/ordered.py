"""Picks that sort a cluster's candidates once: random (seeded), centroid/core (nearest
the cluster centre first), boundary (farthest first) and score (by a column)."""

from __future__ import annotations

import zlib

import numpy as np

from ...nn import unit
from .base import PickMethod, PickRequest
from .fill import take_in_order
from .views import exact_view, seed_key


def pick_random(candidates: np.ndarray, k: int, seed: int, cluster_id: int, *, stratum: str | None = None,
                cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Seeded per cluster (and stratum), so one cluster's budget never changes another's rows;
    a larger k extends a smaller k's pick.  ``candidates`` (m,) int64 -> (<= k,) int64."""
    key = [seed, seed_key(cluster_id)]
    if stratum is not None:
        key.append(zlib.crc32(stratum.encode("utf-8")) + 1)
    rng = np.random.default_rng(key)
    return take_in_order(candidates, rng.permutation(len(candidates)), k, cost, capacity)


def centre_distance(candidates: np.ndarray, vectors, centroid: np.ndarray) -> np.ndarray:
    """(m,) float32 Euclidean distance of each candidate's unit vector to the unit ``centroid``."""
    return np.linalg.norm(unit(vectors[candidates]) - centroid, axis=1)


def pick_centroid(candidates: np.ndarray, k: int, vectors, centroid: np.ndarray, *,
                  cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Nearest the cluster centre first ('core'; ties by row position)."""
    d = centre_distance(candidates, vectors, centroid)
    return take_in_order(candidates, np.lexsort((candidates, d)), k, cost, capacity)


def pick_boundary(candidates: np.ndarray, k: int, vectors, centroid: np.ndarray, *,
                  cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Farthest from the cluster centre first (the cluster's edge cases)."""
    d = centre_distance(candidates, vectors, centroid)
    return take_in_order(candidates, np.lexsort((candidates, -d)), k, cost, capacity)


def pick_score(candidates: np.ndarray, k: int, scores: np.ndarray, ascending: bool, *,
               cost: np.ndarray | None = None, capacity: int | None = None) -> np.ndarray:
    """Highest ``scores`` (n,) first (lowest with ``ascending``); missing (NaN) scores last, ties by position."""
    s = np.asarray(scores[candidates], dtype=np.float64)
    key = np.where(np.isnan(s), np.inf, s if ascending else -s)  # missing scores last
    return take_in_order(candidates, np.lexsort((candidates, key)), k, cost, capacity)


def _random(r: PickRequest) -> np.ndarray:
    return pick_random(r.candidates, r.k, r.seed, r.cluster_id, stratum=r.stratum, cost=r.cost, capacity=r.capacity)


def _centroid(r: PickRequest) -> np.ndarray:
    return pick_centroid(r.candidates, r.k, r.view.rows, r.view.centroid, cost=r.cost, capacity=r.capacity)


def _boundary(r: PickRequest) -> np.ndarray:
    return pick_boundary(r.candidates, r.k, r.view.rows, r.view.centroid, cost=r.cost, capacity=r.capacity)


def _score(r: PickRequest) -> np.ndarray:
    return pick_score(r.candidates, r.k, r.scores, r.score_ascending, cost=r.cost, capacity=r.capacity)


RANDOM = PickMethod("random", "seeded random rows per cluster", pick=_random)
CENTROID = PickMethod("centroid", "nearest the cluster centre first", pick=_centroid, view=exact_view, vectors=True)
CORE = PickMethod("core", "same as centroid: the cluster's core rows first", pick=_centroid, view=exact_view,
                  vectors=True)
BOUNDARY = PickMethod("boundary", "farthest from the cluster centre first (edge cases)", pick=_boundary,
                      view=exact_view, vectors=True)
SCORE = PickMethod("score", "by a numeric score_column (highest first; --ascending: lowest)", pick=_score,
                   scores="required", engines=("local",))
