"""The fast paths for large maps (issue 6): pick='diverse' on a bounded candidate pool
(``algo_version`` 2), sampled metrics, and the Map page's selection helpers.

Claims checked here:

* algo_version 2 gives the *same ids* as the original k-center greedy whenever every
  cluster fits in the pool (<= DIVERSE_POOL_MIN rows), on several seeds, sizes and
  dimensions, with pins, bans and either policy;
* on bigger clusters it stays a diverse pick: its mean nearest-neighbour distance is
  within 12 % of the exact greedy's and far above random, and it represents the
  cluster as well (mean distance to the nearest chosen row within 10 %);
* a manifest's select dict without ``algo_version`` replays the original algorithm:
  the same ids as the code before the fast path (frozen below);
* budgets, caps, token budgets and strata still hold, and the pick is deterministic;
* the sampled metrics equal the exact ones for small subsets and stay within a few
  per cent for big ones; the label metrics equal a plain count;
* ids_in / selection_summary / draw_sample agree with straightforward versions.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.stages import metrics as M
from core.explore import draw_sample, ids_in, points_in_lasso, selection_summary
from core.selection import ALGO_VERSION, DIVERSE_POOL_MIN, SelectParams, select
from core.store.workspace import SieveError


def _blobs(seed: int, sizes, dim: int, spread: float = 0.6, noise: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    if noise:
        labels = np.concatenate([labels, np.full(noise, -1)])
    v = centres[np.maximum(labels, 0)] + rng.standard_normal((len(labels), dim)) * spread
    v[labels < 0] = rng.standard_normal((noise, dim)) * 2
    perm = rng.permutation(len(labels))  # clusters interleaved in row order, like a real map
    return labels[perm], v[perm].astype(np.float32)


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# -- pick='diverse': version 2 vs the original ------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_pool_diverse_equals_exact_greedy_when_clusters_fit_the_pool(seed):
    rng = np.random.default_rng(100 + seed)
    dim = [8, 32, 384, 16, 64][seed]
    sizes = rng.integers(50, DIVERSE_POOL_MIN, size=int(rng.integers(2, 6)))
    labels, v = _blobs(seed, sizes, dim, noise=int(rng.integers(0, 80)))
    row_ids = np.arange(len(labels), dtype=np.int64) * 3 + 11
    n = len(labels)
    cases = [dict(), dict(pins=(int(row_ids[3]), int(row_ids[40])), bans=(int(row_ids[7]),)),
             dict(policy="proportional", seed=seed + 1, noise="exclude")]
    for extra in cases:
        budget = int(rng.integers(10, n // 3))
        old = select(labels, row_ids, SelectParams(budget=budget, pick="diverse", algo_version=1, **extra), vectors=v)
        new = select(labels, row_ids, SelectParams(budget=budget, pick="diverse", **extra), vectors=v)
        assert new.row_ids.tolist() == old.row_ids.tolist()
        assert new.ranks.tolist() == old.ranks.tolist() and new.reasons == old.reasons


def _coverage_stats(v, chosen):
    u = _unit(v)
    dist = 1 - (u @ u[chosen].T).max(axis=1)
    return float(dist.mean())


@pytest.mark.parametrize("dim,budget", [(16, 40), (32, 120), (384, 60)])
def test_pool_diverse_on_big_clusters_stays_diverse(dim, budget):
    labels, v = _blobs(7, [4000, 2500], dim, spread=0.7)
    row_ids = np.arange(len(labels))
    old = select(labels, row_ids, SelectParams(budget=budget, pick="diverse", algo_version=1), vectors=v)
    new = select(labels, row_ids, SelectParams(budget=budget, pick="diverse"), vectors=v)
    rnd = select(labels, row_ids, SelectParams(budget=budget, pick="random"), vectors=v)
    assert len(new) == len(old) == budget
    assert new.allocation == old.allocation
    nn_old = M.mean_nn_distance(v, old.positions, max_rows=10**6)
    nn_new = M.mean_nn_distance(v, new.positions, max_rows=10**6)
    nn_rnd = M.mean_nn_distance(v, rnd.positions, max_rows=10**6)
    assert nn_new >= 0.88 * nn_old
    assert nn_new >= 1.1 * nn_rnd
    assert _coverage_stats(v, new.positions) <= 1.10 * _coverage_stats(v, old.positions)


def test_old_manifest_dict_replays_the_original_algorithm():
    # Clusters of 1,500 and 1,300 rows: bigger than the pool, so versions 1 and 2 differ.
    rng = np.random.default_rng(2024)
    centres = rng.standard_normal((3, 24))
    labels = np.repeat([0, 1, 2], [1500, 300, 1300])
    v = (centres[labels] + rng.standard_normal((len(labels), 24)) * 0.6).astype(np.float32)
    row_ids = np.arange(len(labels), dtype=np.int64) * 7 + 3
    manifest_select = {"budget": 30, "policy": "equal", "pick": "diverse", "seed": 5, "pins": [10], "bans": [17]}
    params = SelectParams.from_dict(json.loads(json.dumps(manifest_select)))
    assert params.algo_version == 1
    sel = select(labels, row_ids, params, vectors=v)
    # the ids the code before algo_version existed chose for this manifest
    expected = [10, 1235, 4840, 6499, 7164, 1557, 3608, 1473, 1907, 4091, 12281, 12274, 11784, 12232, 12148,
                12211, 11343, 11371, 12589, 11070, 19442, 18616, 13618, 16936, 14556, 20583, 15053, 17181, 16124,
                17531]
    assert sel.row_ids.tolist() == expected
    # new parameters get the fast version, which records itself and round-trips
    fresh = SelectParams(budget=30, pick="diverse", seed=5, pins=(10,), bans=(17,))
    assert fresh.algo_version == ALGO_VERSION and fresh.to_dict()["algo_version"] == ALGO_VERSION
    assert SelectParams.from_dict(json.loads(json.dumps(fresh.to_dict()))) == fresh
    new = select(labels, row_ids, fresh, vectors=v)
    assert new.row_ids.tolist() != expected and new.row_ids[0] == 10 and len(new) == 30
    assert 17 not in new.row_ids.tolist()


@pytest.mark.parametrize("bad", [0, 4, "2", True, 1.5, None])
def test_algo_version_is_validated(bad):
    with pytest.raises(SieveError, match="algo_version"):
        SelectParams(budget=5, algo_version=bad)


def test_pool_diverse_budgets_caps_and_determinism():
    labels, v = _blobs(3, [3000, 1800, 40, 700], 24, noise=200)
    row_ids = np.arange(len(labels))
    p = SelectParams(budget=400, pick="diverse", policy="sqrt", max_per_cluster=150, min_per_cluster=30, seed=9,
                     pins=(int(np.nonzero(labels == 0)[0][5]),))
    a = select(labels, row_ids, p, vectors=v)
    b = select(labels, row_ids, p, vectors=v)
    assert a.row_ids.tolist() == b.row_ids.tolist()
    assert len(a) == 400 == sum(a.allocation.values())
    got = dict(zip(*np.unique(a.clusters, return_counts=True)))
    assert {int(c): int(k) for c, k in got.items()} == {c: k for c, k in a.allocation.items() if k}
    assert all(k <= 150 for c, k in a.allocation.items() if c >= 0)
    assert all(a.allocation[c] >= 30 for c in (0, 1, 2, 3))
    assert len(set(a.row_ids.tolist())) == len(a)
    other = select(labels, row_ids, SelectParams(**{**p.__dict__, "seed": 10}), vectors=v)
    assert other.row_ids.tolist() != a.row_ids.tolist()  # another seed, another pool


def test_pool_diverse_token_budget_and_strata():
    labels, v = _blobs(4, [2600, 1500], 16)
    n = len(labels)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 60, n)
    row_ids = np.arange(n)
    sel = select(labels, row_ids, SelectParams(budget=5000, pick="diverse", budget_unit="tokens"), vectors=v,
                 token_counts=tokens)
    assert 0 < tokens[sel.positions].sum() <= 5000
    for c, cap in sel.allocation.items():
        assert tokens[sel.positions[sel.clusters == c]].sum() <= cap
    assert tokens[sel.positions].sum() >= 5000 - 2 * 60  # the pool does not run dry before the budget
    strata = np.where(rng.random(n) < 0.3, "a", "b")
    st = select(labels, row_ids, SelectParams(budget=300, pick="diverse", strata_column="s"), vectors=v,
                strata=strata)
    assert len(st) == 300 and len(set(st.row_ids.tolist())) == 300
    for c, cells in st.stats["strata"].items():
        for s, k in cells.items():
            assert int(((st.clusters == int(c)) & (strata[st.positions] == s)).sum()) == k


# -- metrics --------------------------------------------------------------------------------------


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


# -- Map page helpers ------------------------------------------------------------------------------


def test_ids_in_matches_a_plain_isin():
    rng = np.random.default_rng(0)
    sorted_ids = np.sort(rng.choice(10**6, 20_000, replace=False)).astype(np.int64)
    shuffled = rng.permutation(sorted_ids)
    for row_ids in (sorted_ids, shuffled):
        for ids in (rng.choice(row_ids, 3000), np.concatenate([rng.choice(row_ids, 50), [-5, 10**7]]),
                    np.zeros(0, np.int64)):
            want = np.isin(row_ids, ids)
            assert np.array_equal(ids_in(row_ids, ids), want)
            assert np.array_equal(ids_in(row_ids, ids.tolist()), want)


def test_selection_summary_and_draw_sample_match_plain_versions():
    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 40, 50_000).astype(np.int32)
    mask = rng.random(50_000) < 0.2
    summ = selection_summary(labels, mask)
    ids, cnt = np.unique(labels[mask], return_counts=True)
    full = {int(c): int((labels == c).sum()) for c in ids}
    want = sorted(((int(c), int(k)) for c, k in zip(ids, cnt)), key=lambda t: (-t[1], t[0]))
    assert [(r["id"], r["count"]) for r in summ["clusters"]] == want
    assert all(r["share"] == r["count"] / full[r["id"]] for r in summ["clusters"])
    drawn = draw_sample(labels, 5000, seed=2)
    assert len(drawn) == 5000 and np.array_equal(drawn, np.unique(drawn))
    assert set(np.unique(labels[drawn]).tolist()) == set(np.unique(labels).tolist())
    assert np.array_equal(draw_sample(labels, 5000, seed=2), drawn)


def test_lasso_matches_a_plain_ray_cast():
    rng = np.random.default_rng(3)
    xy = rng.standard_normal((20_000, 2)).astype(np.float32)
    th = np.linspace(0, 2 * np.pi, 37, endpoint=False)
    r = 1 + 0.4 * np.sin(5 * th)
    px, py = r * np.cos(th), r * np.sin(th)
    got = points_in_lasso(xy, px, py)
    x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
    inside = np.zeros(len(xy), bool)
    for i in range(len(px)):
        xi, yi, xj, yj = px[i], py[i], px[i - 1], py[i - 1]
        cross = ((yi > y) != (yj > y)) & (x < (xj - xi) * (y - yi) / (yj - yi + 1e-300) + xi)
        inside ^= cross
    assert (got != inside).sum() <= 2  # points exactly on an edge may go either way
    assert 0.2 < got.mean() < 0.6
