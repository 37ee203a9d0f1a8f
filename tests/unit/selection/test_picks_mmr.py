"""core.selection.picks.mmr: maximal marginal relevance (pick='mmr')."""

from __future__ import annotations

import numpy as np

from core.nn import unit
from core.selection import SelectParams, select
from tests.builders import blob_cluster as _blob_cluster


def test_mmr_lambda_one_is_top_relevance_and_small_lambda_spreads_out():
    v, centre = _blob_cluster(150, seed=1)
    labels = np.zeros(150, int)
    row_ids = np.arange(150) + 1000
    top = select(labels, row_ids, SelectParams(budget=10, pick="mmr", mmr_lambda=1.0), vectors=v)
    core = select(labels, row_ids, SelectParams(budget=10, pick="core"), vectors=v)
    assert top.row_ids.tolist() == core.row_ids.tolist()  # relevance = similarity to the centre
    # with a score column as the relevance, lambda=1 is the score order
    scores = np.random.default_rng(0).uniform(size=150)
    by_score = select(labels, row_ids, SelectParams(budget=10, pick="mmr", mmr_lambda=1.0, score_column="q"),
                      vectors=v, scores=scores)
    assert by_score.positions.tolist() == np.argsort(-scores)[:10].tolist()

    def min_pair_distance(pos):
        u = unit(v[pos])
        d = 1 - u @ u.T
        return d[np.triu_indices(len(pos), 1)].min()

    spread = select(labels, row_ids, SelectParams(budget=10, pick="mmr", mmr_lambda=0.1), vectors=v)
    assert min_pair_distance(spread.positions) > 1.5 * min_pair_distance(top.positions)
    assert spread.reasons == ["mmr"] * 10
