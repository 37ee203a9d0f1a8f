"""Metrics (core.stages.metrics): Jensen-Shannon divergence, coverage and nearest-neighbour
diversity, on hand-made and generated inputs and on selections of the session maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stages.metrics import coverage, jensen_shannon, mean_nn_distance, selection_metrics
from core.engines.local import run_selection
from core.selection import SelectParams
from core.store.workspace import SieveError

dist = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=12)


@given(dist)
@settings(max_examples=100, deadline=None)
def test_jsd_is_zero_for_identical_distributions(p):
    assert jensen_shannon(np.array(p), np.array(p)) == pytest.approx(0.0, abs=1e-9)
    if sum(p) > 0:
        assert jensen_shannon(np.array(p), 3.5 * np.array(p)) == pytest.approx(0.0, abs=1e-9)  # scale-free


@given(st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.floats(0, 100, allow_nan=False), min_size=n, max_size=n))))
@settings(max_examples=150, deadline=None)
def test_jsd_is_symmetric_and_bounded(pq):
    p, q = map(np.array, pq)
    a, b = jensen_shannon(p, q), jensen_shannon(q, p)
    assert a == pytest.approx(b, abs=1e-9)
    assert 0.0 <= a <= 1.0


def test_jsd_examples():
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert jensen_shannon(np.array([1, 1]), np.array([1, 0])) == pytest.approx(0.3112781, abs=1e-6)
    assert jensen_shannon(np.zeros(3), np.zeros(3)) == 0.0
    assert jensen_shannon(np.zeros(3), np.ones(3)) == 1.0


def test_coverage_ignores_noise():
    labels = np.array([0, 0, 1, 1, 2, 2, -1, -1])
    assert coverage(labels, np.array([0, 2, 6])) == pytest.approx(2 / 3)
    assert coverage(labels, np.array([6, 7])) == 0.0
    assert coverage(labels, np.array([1, 3, 5])) == 1.0
    assert coverage(np.array([-1, -1]), np.array([0])) == 1.0  # only noise: noise is the group


def test_mean_nn_distance_examples():
    v = np.array([[1, 0], [1, 0], [0, 1], [0, 2]], np.float32)
    assert mean_nn_distance(v, np.array([0, 1])) == pytest.approx(0.0, abs=1e-6)
    assert mean_nn_distance(v, np.array([0, 2])) == pytest.approx(1.0)
    assert mean_nn_distance(v, np.array([0, 1, 2, 3])) == pytest.approx(0.0, abs=1e-6)
    assert mean_nn_distance(v, np.array([0])) is None


def test_selection_metrics_counts_and_proportional_vs_equal(sieve_fake_map):
    d = sieve_fake_map.data
    labels = np.asarray(d.labels)
    prop = run_selection(sieve_fake_map.ws, d, SelectParams(budget=80, policy="proportional"))
    eq = run_selection(sieve_fake_map.ws, d, SelectParams(budget=80, policy="equal"))
    mp = selection_metrics(labels, prop.positions)
    me = selection_metrics(labels, eq.positions)
    assert mp.n_full == len(labels) and mp.n_subset == 80
    assert sum(mp.counts_subset.values()) == 80 and sum(mp.counts_full.values()) == len(labels)
    assert mp.counts_subset == {c: int((prop.clusters == c).sum()) for c in mp.counts_full}
    assert mp.coverage == me.coverage == 1.0
    assert mp.jsd < 0.01 < me.jsd  # proportional keeps the distribution, equal flattens a skewed one
    assert mp.nn_distance is None  # no vectors given
    json.dumps(mp.to_dict())


def test_diverse_pick_is_more_spread_out_than_random(sieve_real_map):
    # measured on the real-model map: diverse 0.736, random (seeds 0-4) 0.53-0.64
    d = sieve_real_map.data
    vectors = np.asarray(d.vectors)
    div = run_selection(sieve_real_map.ws, d, SelectParams(budget=60, pick="diverse"))
    d_div = mean_nn_distance(vectors, div.positions)
    d_rnd = []
    for seed in range(5):
        rnd = run_selection(sieve_real_map.ws, d, SelectParams(budget=60, pick="random", seed=seed))
        assert np.array_equal(np.sort(div.clusters), np.sort(rnd.clusters))  # same allocation, only the pick differs
        d_rnd.append(mean_nn_distance(vectors, rnd.positions))
    assert d_div > max(d_rnd)
    assert d_div > 1.1 * np.mean(d_rnd)
    m = selection_metrics(np.asarray(d.labels), div.positions, vectors)
    assert m.nn_distance == pytest.approx(d_div)
    assert m.nn_distance_random is not None and m.nn_distance > m.nn_distance_random


def test_score_pick_through_the_workspace(sieve_fake_map):
    m = sieve_fake_map
    d = m.data
    sel = run_selection(m.ws, d, SelectParams(budget=32, pick="score", score_column="quality"))
    quality = np.asarray(m.table.column("quality").to_pylist())[d.row_ids]
    for c in set(sel.clusters.tolist()):
        got = quality[sel.positions[sel.clusters == c]]
        members = quality[np.asarray(d.labels) == c]
        assert got.tolist() == sorted(members, reverse=True)[: len(got)]
    with pytest.raises(SieveError, match="'topic'"):
        run_selection(m.ws, d, SelectParams(budget=5, pick="score", score_column="topic"))
    with pytest.raises(SieveError, match="'nope'"):
        run_selection(m.ws, d, SelectParams(budget=5, pick="score", score_column="nope"))
