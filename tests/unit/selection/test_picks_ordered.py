"""core.selection.picks.ordered: the random, centroid, score, core and boundary picks."""

from __future__ import annotations

import numpy as np
import pytest

from core.nn import unit
from core.selection import SelectParams, select
from core.store.workspace import SieveError
from tests.builders import blob_cluster as _blob_cluster
from tests.fakes import blobs_on_sphere


def test_random_pick_is_seeded_and_a_bigger_budget_extends_a_smaller_one():
    labels = np.repeat([0, 1], [50, 40])
    row_ids = np.arange(90) * 3 + 11
    small = select(labels, row_ids, SelectParams(budget=10, pick="random", seed=5))
    big = select(labels, row_ids, SelectParams(budget=30, pick="random", seed=5))
    same = select(labels, row_ids, SelectParams(budget=10, pick="random", seed=5))
    other = select(labels, row_ids, SelectParams(budget=10, pick="random", seed=6))
    np.testing.assert_array_equal(small.row_ids, same.row_ids)
    assert set(small.row_ids.tolist()) != set(other.row_ids.tolist())
    for c in (0, 1):
        s, b = small.row_ids[small.clusters == c], big.row_ids[big.clusters == c]
        assert b[: len(s)].tolist() == s.tolist()  # prefix, in rank order
    # one cluster's budget never changes another cluster's rows
    a = select(labels, row_ids, SelectParams(budget=20, pick="random", seed=5, overrides={1: 5}))
    b = select(labels, row_ids, SelectParams(budget=20, pick="random", seed=5, overrides={1: 12}))
    common = min((a.clusters == 0).sum(), (b.clusters == 0).sum())
    assert a.row_ids[a.clusters == 0][:common].tolist() == b.row_ids[b.clusters == 0][:common].tolist()
    assert a.row_ids[a.clusters == 1].tolist() == b.row_ids[b.clusters == 1][:5].tolist()


def test_random_pick_does_not_depend_on_input_order():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    row_ids = np.arange(60) + 100
    perm = rng.permutation(60)
    a = select(labels, row_ids, SelectParams(budget=15, pick="random", seed=1))
    b = select(labels[perm], row_ids[perm], SelectParams(budget=15, pick="random", seed=1))
    assert a.row_ids.tolist() == b.row_ids.tolist()


def test_centroid_picks_the_rows_nearest_the_centroid():
    rng = np.random.default_rng(2)
    vectors = np.concatenate([
        blobs_on_sphere([[1, 0.2, 0, 0]], [40], spread=0.35, seed=3),
        blobs_on_sphere([[0, 0, 1, 0]], [30], spread=0.35, seed=4),
    ])
    labels = np.repeat([0, 1], [40, 30])
    row_ids = rng.permutation(1000)[:70]
    sel = select(labels, row_ids, SelectParams(budget=10, policy="equal", pick="centroid"), vectors=vectors)
    for c in (0, 1):
        members = np.nonzero(labels == c)[0]
        unit = vectors[members] / np.linalg.norm(vectors[members], axis=1, keepdims=True)
        centre = unit.mean(0) / np.linalg.norm(unit.mean(0))
        d = np.linalg.norm(unit - centre, axis=1)
        expected = members[np.argsort(d, kind="stable")[:5]]
        got = sel.positions[sel.clusters == c]
        assert got.tolist() == expected.tolist()  # nearest first
        assert set(sel.reasons[i] for i in np.nonzero(sel.clusters == c)[0]) == {"centroid"}


def test_score_pick_top_k_with_nan_last():
    labels = np.zeros(6, int)
    row_ids = np.arange(6) + 10
    scores = np.array([0.5, np.nan, 0.9, 0.1, np.nan, 0.7])
    desc = select(labels, row_ids, SelectParams(budget=5, pick="score", score_column="q"), scores=scores)
    assert desc.row_ids.tolist() == [12, 15, 10, 13, 11]  # 0.9 0.7 0.5 0.1 then the first NaN
    asc = select(labels, row_ids, SelectParams(budget=5, pick="score", score_column="q", score_ascending=True),
                 scores=scores)
    assert asc.row_ids.tolist() == [13, 10, 15, 12, 11]
    top = select(labels, row_ids, SelectParams(budget=2, pick="score", score_column="q"), scores=scores)
    assert top.row_ids.tolist() == [12, 15] and top.reasons == ["score", "score"]
    assert any("no 'q' score" in note for note in desc.notes)
    with pytest.raises(SieveError, match="infinite"):
        select(labels, row_ids, SelectParams(budget=2, pick="score", score_column="q"),
               scores=np.array([1, np.inf, 2, 3, 4, 5.0]))
    with pytest.raises(SieveError, match="score_column"):
        select(labels, row_ids, SelectParams(budget=2, pick="score", score_column="q"))


def test_boundary_picks_far_from_the_centre_and_core_near_it():
    v, _ = _blob_cluster(200, seed=3)
    labels = np.zeros(200, int)
    row_ids = np.arange(200)
    u = unit(v)
    centre = u.mean(0) / np.linalg.norm(u.mean(0))
    d = np.linalg.norm(u - centre, axis=1)
    far = select(labels, row_ids, SelectParams(budget=10, pick="boundary"), vectors=v)
    near = select(labels, row_ids, SelectParams(budget=10, pick="core"), vectors=v)
    assert sorted(far.positions.tolist()) == sorted(np.argsort(-d)[:10].tolist())
    assert sorted(near.positions.tolist()) == sorted(np.argsort(d)[:10].tolist())
    assert d[far.positions].min() > d[near.positions].max()
    assert far.reasons == ["boundary"] * 10 and near.reasons == ["core"] * 10
    # core is the centroid pick under its own name
    cen = select(labels, row_ids, SelectParams(budget=10, pick="centroid"), vectors=v)
    assert cen.positions.tolist() == near.positions.tolist()
