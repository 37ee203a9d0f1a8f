"""Metrics (core.stages.metrics): Jensen-Shannon divergence, coverage and nearest-neighbour
diversity, on hand-made and generated inputs and on selections of the session maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.stages import metrics as M
from core.stages.metrics import coverage, jensen_shannon, mean_nn_distance, selection_metrics
from core.engines.local import run_selection
from core.nn import unit
from core.selection import SelectParams, select
from core.store.workspace import SieveError
from tests.builders import labelled_blobs as _blobs, unit_rows as _unit
from tests.fakes import blobs_on_sphere

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


def test_label_metrics_equal_a_plain_count():
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 30, 5000)
    chosen = rng.choice(5000, 400, replace=False)
    m = M.selection_metrics(labels, chosen, n_random=2)
    groups = sorted(set(labels.tolist()))
    assert m.counts_full == {c: int((labels == c).sum()) for c in groups}
    assert m.counts_subset == {c: int((labels[chosen] == c).sum()) for c in groups}
    real = set(groups) - {-1}
    assert m.coverage == len(set(labels[chosen].tolist()) & real) / len(real)
    assert M.coverage(labels, chosen) == m.coverage
    assert m.jsd == M.jensen_shannon(np.array([m.counts_full[c] for c in groups]),
                                     np.array([m.counts_subset[c] for c in groups]))
    assert M.coverage(np.full(10, -1), np.arange(3)) == 1.0  # only noise: noise counts as the group


def test_small_subsets_are_measured_exactly():
    labels, v = _blobs(5, [900, 700], 32)
    chosen = np.random.default_rng(2).choice(len(labels), 500, replace=False)
    m = M.selection_metrics(labels, chosen, v, n_random=3, seed=4)
    assert m.nn_distance == pytest.approx(M.mean_nn_distance(v, chosen, max_rows=10**6), abs=1e-5)
    u = _unit(v)
    exact_fac = float(np.maximum((u @ u[chosen].T).max(axis=1), 0).mean())  # 1,600 rows <= 2,000 clients
    assert m.facility == pytest.approx(exact_fac, abs=1e-5)
    assert m.n_random == 3 and m.n_random_vectors == 3


def test_big_subsets_are_sampled_and_close_to_exact():
    labels, v = _blobs(6, [6000, 5000, 4000], 16, spread=0.8)
    n = len(labels)
    chosen = np.sort(np.random.default_rng(3).choice(n, 5000, replace=False))
    m = M.selection_metrics(labels, chosen, v, n_random=5, seed=1)
    assert M.sample_size(5000, 4000) == 500 and M.sample_size(5000, 2000) == 500
    exact_nn = M.mean_nn_distance(v, chosen, max_rows=10**6)
    assert m.nn_distance == pytest.approx(exact_nn, rel=0.05)
    u = _unit(v)
    exact_fac = float(np.concatenate([np.maximum((u[s:s + 4000] @ u[chosen].T).max(axis=1), 0)
                                      for s in range(0, n, 4000)]).mean())
    assert m.facility == pytest.approx(exact_fac, rel=0.03)
    assert m.n_random == 5 and m.n_random_vectors == 1
    # a random subset vs the random baseline: the same distribution, so close values
    assert m.random["nn_distance"] == pytest.approx(m.nn_distance, rel=0.08)
    assert m.random["facility"] == pytest.approx(m.facility, rel=0.05)
    again = M.selection_metrics(labels, chosen, v, n_random=5, seed=1)
    assert again.to_dict() == m.to_dict()  # seeded samples: deterministic


def test_duplicate_rate_on_a_sampled_subset_mixes_no_partial_baselines():
    labels, v = _blobs(8, [3000], 8)
    keys = np.arange(len(labels)) % 1500  # every text twice
    chosen = np.arange(2000)
    m = M.selection_metrics(labels, chosen, v, keys=keys, n_random=4, seed=0)
    assert m.dup_rate == pytest.approx(M.duplicate_rate(chosen, keys=keys, vectors=v,
                                                        max_rows=M.sample_size(2000, 4000)), abs=1e-9)
    # the random baseline's duplicate rate is the first random subset's (exact + near), not a
    # mean with exact-only rates of the others
    first = np.random.default_rng(1).choice(np.arange(len(labels)), 2000, replace=False)
    want = M.duplicate_rate(first, keys=keys, vectors=v, max_rows=M.sample_size(2000, 4000), seed=0)
    assert m.random["dup_rate"] == pytest.approx(want, abs=1e-9)


def test_reference_coverage_and_the_random_baseline():
    centres = np.eye(10)
    v = blobs_on_sphere(centres, [500] + [10] * 9, spread=0.1, seed=1)
    labels = np.repeat(np.arange(10), [500] + [10] * 9)
    reference = blobs_on_sphere(centres, [3] * 10, spread=0.1, seed=9)  # 3 rows near every blob
    chosen = select(labels, np.arange(len(v)), SelectParams(budget=20, policy="equal")).positions
    m = selection_metrics(labels, chosen, v, reference=reference, coverage_distance=0.3, n_random=5)
    assert m.coverage == 1.0 and m.reference_coverage == 1.0
    assert m.n_random == 5 and set(m.random) >= {"coverage", "jsd", "nn_distance", "facility", "dup_rate",
                                                 "reference_coverage"}
    assert m.random["reference_coverage"] < 0.8 and m.random["coverage"] < 1.0
    rows = {r["key"]: r for r in m.comparison()}
    assert rows["coverage"]["better"] == "subset" and rows["reference_coverage"]["better"] == "subset"
    assert rows["jsd"]["better"] == "random"  # balanced is far from the skewed full mix: by design
    d = json.loads(json.dumps(m.to_dict()))
    assert d["random"]["coverage"] == m.random["coverage"] and d["comparison"]


def test_duplicate_rate_counts_exact_and_near_twins():
    rng = np.random.default_rng(0)
    v = unit(rng.standard_normal((10, 16)))
    v[1] = v[0]  # near (identical vectors)
    keys = np.arange(10)
    keys[5] = keys[4]  # exact (same normalised text, different vectors)
    m = selection_metrics(np.zeros(10, int), np.arange(10), v, keys=keys, n_random=0)
    assert m.dup_rate == pytest.approx(0.4)
    m2 = selection_metrics(np.zeros(10, int), np.array([0, 2, 3, 4]), v, keys=keys, n_random=0)
    assert m2.dup_rate == 0.0
