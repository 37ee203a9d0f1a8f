"""core.nn: nearest-neighbour helpers (similar pairs above a cosine threshold)."""

from __future__ import annotations

import numpy as np

from core.nn import similar_pairs, unit


def test_near_duplicate_search_on_big_clusters_uses_neighbours_and_finds_the_copies():
    rng = np.random.default_rng(1)
    base = unit(rng.standard_normal((400, 24)))
    v = np.concatenate([base, unit(base[:50] + 0.01 * rng.standard_normal((50, 24)))])
    exact = set(zip(*similar_pairs(v, 0.95)))
    approx = set(zip(*similar_pairs(v, 0.95, exact_rows=100)))  # forces the neighbour-graph path
    assert exact == {(i, 400 + i) for i in range(50)}
    assert approx == exact
