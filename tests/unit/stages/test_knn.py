"""core.stages.knn: the k-nearest-neighbour graph."""

from __future__ import annotations

import numpy as np

from core.stages.knn import knn_graph


def test_knn_graph_puts_each_point_first_even_with_duplicates():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((20, 5)).astype(np.float32)
    v[5] = v[3]
    v[6] = v[3]
    idx, dist = knn_graph(v, 4, "euclidean", 0)
    assert idx.shape == (20, 4)
    assert idx[:, 0].tolist() == list(range(20))
    assert (dist[:, 0] == 0).all()
    assert set(idx[3, :3].tolist()) == {3, 5, 6}
